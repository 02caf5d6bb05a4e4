import { SignJWT } from 'jose';
import { PermissionDenied, Unauthenticated } from '@gef/common';
import { signExecutionToken } from '@gef/common/execution-token';
import { assertBuildToken, signBuildToken } from '../src/domain/build-token';

const secret = 'a-build-secret-of-enough-length';
const ref = { scriptId: '0b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e', version: 3 };

async function refusal(promise: Promise<unknown>): Promise<{ kind: string; reason: string | undefined }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Unauthenticated) return { kind: 'Unauthenticated', reason: err.reason };
    if (err instanceof PermissionDenied) return { kind: 'PermissionDenied', reason: err.reason };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('build tokens', () => {
  it("are accepted for their own version's build only", async () => {
    const token = await signBuildToken(secret, ref);
    await expect(assertBuildToken(secret, token, ref)).resolves.toBeUndefined();
    await expect(assertBuildToken(secret, token, { ...ref, scriptId: ref.scriptId.toUpperCase() })).resolves.toBeUndefined();
    expect(await refusal(assertBuildToken(secret, token, { ...ref, version: 4 }))).toEqual({ kind: 'PermissionDenied', reason: 'forbidden' });
    expect(await refusal(assertBuildToken(secret, token, { ...ref, scriptId: '1b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e' }))).toEqual({ kind: 'PermissionDenied', reason: 'forbidden' });
  });

  it('outlive a build waiting days for a runner behind long runs, and expire after two weeks', async () => {
    const token = await signBuildToken(secret, ref);
    jest.useFakeTimers({ now: Date.now() + 8 * 24 * 3600 * 1000, doNotFake: ['nextTick', 'setImmediate'] });
    try {
      await expect(assertBuildToken(secret, token, ref)).resolves.toBeUndefined();
      jest.setSystemTime(Date.now() + 7 * 24 * 3600 * 1000);
      expect(await refusal(assertBuildToken(secret, token, ref))).toMatchObject({ kind: 'Unauthenticated' });
    } finally {
      jest.useRealTimers();
    }
  });

  it('are required, and refused when forged, expired or of another kind', async () => {
    expect(await refusal(assertBuildToken(secret, '', ref))).toEqual({ kind: 'Unauthenticated', reason: 'authorization_required' });
    expect(await refusal(assertBuildToken(secret, 'not-a-jwt', ref))).toEqual({ kind: 'Unauthenticated', reason: 'invalid_token' });
    const otherKey = await signBuildToken('another-secret-of-enough-length', ref);
    expect(await refusal(assertBuildToken(secret, otherKey, ref))).toEqual({ kind: 'Unauthenticated', reason: 'invalid_token' });
    const key = new TextEncoder().encode(secret);
    const expired = await new SignJWT({ scope: 'build', att: ref.version })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(ref.scriptId)
      .setIssuer('gef-script')
      .setAudience('gef-script')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(key);
    expect(await refusal(assertBuildToken(secret, expired, ref))).toEqual({ kind: 'Unauthenticated', reason: 'token_expired' });
    const otherScope = await new SignJWT({ scope: 'runner', att: ref.version })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(ref.scriptId)
      .setIssuer('gef-script')
      .setAudience('gef-script')
      .setExpirationTime('1h')
      .sign(key);
    expect(await refusal(assertBuildToken(secret, otherScope, ref))).toEqual({ kind: 'Unauthenticated', reason: 'invalid_token' });
    // An execution token, even one signed with the same key, is not a build token.
    const execution = await signExecutionToken(secret, { executionId: ref.scriptId, scope: 'runner', attempt: ref.version, ttlSeconds: 60 });
    expect(await refusal(assertBuildToken(secret, execution, ref))).toEqual({ kind: 'Unauthenticated', reason: 'invalid_token' });
  });
});
