/**
 * A user addressed by a key no account could have (longer than any e-mail address) is not
 * found, as an over-long script or execution key is: a 404 before the user service is asked.
 */
import { create } from '@bufbuild/protobuf';
import { user } from '@gef/protos';
import { ownerId, quietCancelledCalls, startScriptStack, type ScriptStack } from './scripts-fakes';
import { request } from './support';

let stack: ScriptStack;
let token: string;
let asked = 0;

beforeAll(async () => {
  quietCancelledCalls();
  stack = await startScriptStack();
  token = await stack.keycloak.token(ownerId, 'SUPERADMIN');
  const ada = { id: ownerId, email: 'a@example.org', name: 'Ada', role: user.Role.USER };
  const answer = <T>(reply: T) => () => {
    asked++;
    return reply;
  };
  stack.handlers.user.getUser = answer(create(user.GetUserResponseSchema, { user: ada }));
  stack.handlers.user.updateUser = answer(create(user.UpdateUserResponseSchema, { user: ada }));
  stack.handlers.user.deleteUser = answer(create(user.DeleteUserResponseSchema, { user: ada }));
});
afterAll(() => stack.stop());

it.each([
  ['GET', undefined],
  ['PATCH', JSON.stringify({ name: 'Ada' })],
  ['DELETE', undefined],
])('%s of an over-long user key is 404', async (method, body) => {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) };
  const res = await request(stack.gateway.url, `/api/v1/user/${'x'.repeat(321)}@example.org`, { method, headers, ...(body ? { body } : {}) });
  expect(res.status).toBe(404);
  expect(res.json()).toMatchObject({ status: 404, error: 'not_found' });
  expect(asked).toBe(0);
  // A key of an address's length is asked about.
  const ok = await request(stack.gateway.url, '/api/v1/user/a@example.org', { method, headers, ...(body ? { body } : {}) });
  expect(ok.status).toBe(200);
  expect(asked).toBe(1);
  asked = 0;
});
