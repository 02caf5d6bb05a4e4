import { SignJWT, UnsecuredJWT } from 'jose';
import { Unauthenticated } from '@gef/common';
import { looksLikeExecutionToken, signExecutionToken, verifyExecutionToken } from '@gef/common/execution-token';

const secret = 'a-test-secret-of-enough-length';
const id = '0b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e';

async function reason(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(Unauthenticated);
    return (err as Unauthenticated).reason;
  }
  throw new Error('expected a refusal');
}

describe('execution tokens', () => {
  it('carry one execution, a scope and an attempt', async () => {
    const token = await signExecutionToken(secret, { executionId: id, scope: 'execution', attempt: 2, ttlSeconds: 60 });
    const claims = await verifyExecutionToken(secret, token);
    expect(claims).toMatchObject({ executionId: id, scope: 'execution', attempt: 2 });
    expect(claims.expiresAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(looksLikeExecutionToken(token)).toBe(true);
  });

  it('are refused with another scope than the route allows', async () => {
    const runner = await signExecutionToken(secret, { executionId: id, scope: 'runner', attempt: 1, ttlSeconds: 60 });
    expect(await reason(verifyExecutionToken(secret, runner))).toBe('invalid_token');
    expect((await verifyExecutionToken(secret, runner, ['execution', 'runner'])).scope).toBe('runner');
  });

  it('are refused when signed with another key, expired, unsigned or not ours', async () => {
    const other = await signExecutionToken('another-secret-of-enough-length', { executionId: id, scope: 'execution', attempt: 1, ttlSeconds: 60 });
    expect(await reason(verifyExecutionToken(secret, other))).toBe('invalid_token');
    const key = new TextEncoder().encode(secret);
    const expired = await new SignJWT({ scope: 'execution', att: 1 })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(id)
      .setIssuer('gef-execution')
      .setAudience('gef-api')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(key);
    expect(await reason(verifyExecutionToken(secret, expired))).toBe('token_expired');
    const unsigned = new UnsecuredJWT({ scope: 'execution', att: 1 }).setSubject(id).setIssuer('gef-execution').setAudience('gef-api').setExpirationTime('1h').encode();
    expect(await reason(verifyExecutionToken(secret, unsigned))).toBe('invalid_token');
    const foreign = await new SignJWT({ scope: 'execution', att: 1 }).setProtectedHeader({ alg: 'HS256' }).setSubject(id).setIssuer('keycloak').setAudience('gef-api').setExpirationTime('1h').sign(key);
    expect(await reason(verifyExecutionToken(secret, foreign))).toBe('invalid_token');
    expect(looksLikeExecutionToken(foreign)).toBe(false);
    expect(looksLikeExecutionToken('not a jwt')).toBe(false);
    expect(await reason(verifyExecutionToken(secret, 'not a jwt'))).toBe('invalid_token');
  });
});
