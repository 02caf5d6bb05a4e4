/**
 * Registration's password as the user service receives it: a JSON `null` or no key at all
 * is no password (a link to set one is mailed); any string, even an empty one, is a
 * password the service checks against the policy.
 */
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { reasonHeader } from '@gef/common';
import { user } from '@gef/protos';
import { ownerId, quietCancelledCalls, startScriptStack, type ScriptStack } from './scripts-fakes';
import { request } from './support';

let stack: ScriptStack;
/** The CreateUser requests the fake user service received. */
let received: user.CreateUserRequest[];

beforeAll(async () => {
  quietCancelledCalls();
  stack = await startScriptStack();
});
afterAll(() => stack.stop());

beforeEach(() => {
  received = [];
  stack.handlers.user.createUser = (req) => {
    received.push(req);
    // The service's answer to a password that misses the policy.
    if (req.password !== undefined && req.password.length < 12) {
      throw new ConnectError('Password must be at least 12 characters long', Code.InvalidArgument, { [reasonHeader]: 'weak_password' });
    }
    return create(user.CreateUserResponseSchema, { user: { id: ownerId, email: req.email, name: req.name, role: user.Role.USER } });
  };
});

let n = 0;
const register = (fields: Record<string, unknown>) =>
  request(stack.gateway.url, '/api/v1/user', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: `register-${++n}@example.org`, name: 'Ada', ...fields }),
  });

describe('POST /api/v1/user: the password', () => {
  it('absent: no password is sent, so the service mails a link', async () => {
    const res = await register({});
    expect(res.status).toBe(200);
    expect(received).toHaveLength(1);
    expect(received[0]!.password).toBeUndefined();
  });

  it('null: the same as absent', async () => {
    const res = await register({ password: null });
    expect(res.status).toBe(200);
    expect(received).toHaveLength(1);
    expect(received[0]!.password).toBeUndefined();
  });

  it('empty: sent as an empty password, which the policy refuses (422 weak_password), like any weak one', async () => {
    const empty = await register({ password: '' });
    expect(received.map((r) => r.password)).toEqual(['']);
    const weak = await register({ password: 'short' });
    for (const res of [empty, weak]) {
      expect(res.status).toBe(422);
      expect(res.json()).toMatchObject({ status: 422, error: 'weak_password' });
    }
  });

  it('a strong one is passed as given', async () => {
    const res = await register({ password: 'Correct-Horse-42' });
    expect(res.status).toBe(200);
    expect(received.map((r) => r.password)).toEqual(['Correct-Horse-42']);
  });
});
