import net from 'node:net';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AlreadyExists, detailsHeader, InvalidArgument, NotFound, reasonHeader, Unauthenticated, Unprocessable } from '@gef/common';
import { health } from '@gef/protos';
import { errorNameOf, errorReply, HttpError, httpStatusByCode } from '../src/http-errors';

/** An error as a service sends it: it came over the wire with grpc-status. */
function fromService(message: string, code: Code, reason?: string, details?: string): ConnectError {
  const metadata = new Headers({ 'grpc-status': String(code) });
  if (reason) metadata.set(reasonHeader, reason);
  if (details) metadata.set(detailsHeader, details);
  return new ConnectError(message, code, metadata);
}

describe('the Code → HTTP table', () => {
  it.each([
    [Code.NotFound, 404, 'not_found'],
    [Code.InvalidArgument, 400, 'invalid_argument'],
    [Code.AlreadyExists, 400, 'already_exists'],
    [Code.FailedPrecondition, 400, 'failed_precondition'],
    [Code.PermissionDenied, 403, 'permission_denied'],
    [Code.Unauthenticated, 401, 'unauthenticated'],
    [Code.Aborted, 409, 'aborted'],
    [Code.ResourceExhausted, 429, 'resource_exhausted'],
    [Code.Unimplemented, 501, 'unimplemented'],
  ])('maps code %s to %s with error %s', (code, status, error) => {
    expect(httpStatusByCode[code]).toBe(status);
    const reply = errorReply(fromService('Script not found', code));
    expect(reply.status).toBe(status);
    expect(reply.body).toMatchObject({ status, error });
    if (status !== 501) expect(reply.body.detail).toBe('Script not found');
  });

  it.each([Code.Unavailable, Code.DeadlineExceeded])('maps %s to 503 unavailable', (code) => {
    const reply = errorReply(fromService('database at 10.0.0.5:5432 is down', code));
    expect(reply.status).toBe(503);
    expect(reply.body).toEqual({ status: 503, detail: 'Service unavailable', error: 'unavailable' });
  });

  it.each([Code.Internal, Code.Unknown, Code.DataLoss, Code.OutOfRange, Code.Canceled])('maps %s from a service to a bare 500', (code) => {
    const reply = errorReply(fromService('duplicate key value violates unique constraint "users_pkey"', code));
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ status: 500, detail: 'Internal error' });
    expect(reply.log).toBe('error');
  });

  it('names every code in snake case', () => {
    expect(errorNameOf(Code.FailedPrecondition)).toBe('failed_precondition');
    expect(errorNameOf(Code.DeadlineExceeded)).toBe('unavailable');
  });

  it('takes `error` from the gef-error-reason metadata when present', () => {
    const reply = errorReply(fromService('Token expired', Code.Unauthenticated, 'token_expired'));
    expect(reply.body).toEqual({ status: 401, detail: 'Token expired', error: 'token_expired' });
  });

  it('answers 422 for an InvalidArgument refused by the rules (weak password)', () => {
    expect(errorReply(fromService('Password too weak', Code.InvalidArgument, 'weak_password')).body).toEqual({
      status: 422,
      detail: 'Password too weak',
      error: 'weak_password',
    });
    expect(errorReply(new Unprocessable('Password too weak', 'weak_password')).status).toBe(422);
  });

  it('adds the machine-readable details a service sent, but never over the envelope fields', () => {
    const reply = errorReply(
      fromService('Account locked', Code.Unauthenticated, 'account_locked', JSON.stringify({ minutes_remaining: 12, status: 200, detail: 'x', nested: { a: 1 } })),
    );
    expect(reply.body).toEqual({ status: 401, detail: 'Account locked', error: 'account_locked', minutes_remaining: 12 });
    expect(errorReply(new Unauthenticated('Account locked', 'account_locked', { minutes_remaining: 3 })).body.minutes_remaining).toBe(3);
    expect(errorReply(fromService('x', Code.NotFound, 'not_found', '{not json')).body).toEqual({ status: 404, detail: 'x', error: 'not_found' });
  });

  it('sets Retry-After on a rate limit that says how long to wait', () => {
    const reply = errorReply(fromService('Too many logins', Code.ResourceExhausted, 'rate_limited', '{"retry_after":2.2}'));
    expect(reply.status).toBe(429);
    expect(reply.body).toMatchObject({ error: 'rate_limited', retry_after: 3 });
    expect(reply.headers['Retry-After']).toBe('3');
  });

  it('maps domain errors thrown in the gateway the same way', () => {
    expect(errorReply(new NotFound('No such user')).body).toEqual({ status: 404, detail: 'No such user', error: 'not_found' });
    expect(errorReply(new AlreadyExists('E-mail taken', 'email_taken')).body).toEqual({ status: 400, detail: 'E-mail taken', error: 'email_taken' });
    expect(errorReply(new InvalidArgument('name: Required')).status).toBe(400);
  });

  it('answers HttpError as given, with extra fields and headers', () => {
    const reply = errorReply(new HttpError(429, 'rate_limited', 'Slow down', { retry_after: 3 }, { 'Retry-After': '3' }));
    expect(reply.body).toEqual({ status: 429, detail: 'Slow down', error: 'rate_limited', retry_after: 3 });
    expect(reply.headers).toEqual({ 'Retry-After': '3' });
  });

  it('never shows an unknown error', () => {
    const err = new Error('select * from users where password = ... at /srv/app/x.ts:1:1');
    expect(errorReply(err).body).toEqual({ status: 500, detail: 'Internal error' });
    expect(errorReply('a string').body).toEqual({ status: 500, detail: 'Internal error' });
    expect(errorReply(new HttpError(500, 'x', 'leak')).body).toEqual({ status: 500, detail: 'Internal error' });
  });
});

describe('connection failures', () => {
  it('is 503, not 500, when the service is not listening', async () => {
    const client = createClient(health.HealthService, createGrpcTransport({ baseUrl: 'http://127.0.0.1:1' }));
    const err = await client.check({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect(errorReply(err).status).toBe(503);
  });

  it.each([
    ['an HTTP/2 stream reset', new ConnectError('Stream closed with error code NGHTTP2_REFUSED_STREAM', Code.Internal, undefined, undefined, Object.assign(new Error('x'), { code: 'ERR_HTTP2_STREAM_ERROR' }))],
    ['a reset connection', new ConnectError('read ECONNRESET', Code.Aborted)],
    ['a wrapped refusal', new ConnectError('Error: connect ECONNREFUSED 127.0.0.1:50051', Code.Internal)],
  ])('is 503 for %s', (_name, err) => {
    expect(errorReply(err).status).toBe(503);
  });

  it('is 503 for a dependency reached directly (fetch to Keycloak) that refuses connections', async () => {
    // A port that was free a moment ago (fetch refuses some low ports outright).
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const err = await fetch(`http://127.0.0.1:${port}/realms/gef`).then(
      () => undefined,
      (e: unknown) => e,
    );
    // (undici's TypeError comes from outside Jest's sandbox: not `instanceof` the sandbox's.)
    expect((err as Error).message).toBe('fetch failed');
    expect(errorReply(err).body).toEqual({ status: 503, detail: 'Service unavailable', error: 'unavailable' });
  });

  it('keeps a 409 that the service meant', () => {
    expect(errorReply(fromService('Execution already finished', Code.Aborted)).status).toBe(409);
  });
});
