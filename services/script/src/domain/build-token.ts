import { PermissionDenied, Unauthenticated } from '@gef/common';
import { signScopedToken, verifyScopedToken, type ScopedTokenKind } from '@gef/common/scoped-token';
import type { ScriptBuildRef } from '@gef/workflows/activities';

/**
 * Build tokens: the credential of AppendBuildLog and GetBuildRequirements. The script
 * service signs one with BUILD_TOKEN_SECRET (a key only it holds) when a version's build
 * starts — scope `build`, `sub` = the script id, `att` = the version — and the buildScript
 * workflow hands it to the runner preparing the environment. Whoever merely reaches the
 * service's port cannot write to a build log.
 */
const kind: ScopedTokenKind = { issuer: 'gef-script', audience: 'gef-script', name: 'build token', secretName: 'BUILD_TOKEN_SECRET' };

/**
 * Long enough for a build to wait for a runner and make every attempt the workflow allows
 * (five of 30 minutes with back-off): a build waits in the runners' queue behind runs, which
 * may last up to 7 days, and a token that expired meanwhile failed the build. What the token
 * grants ends with the build anyway: lines and requirements of a version that is no longer
 * BUILDING are refused.
 */
export const buildTokenTtlSeconds = 14 * 24 * 3600;

export function signBuildToken(secret: string, ref: ScriptBuildRef): Promise<string> {
  return signScopedToken(kind, secret, { subject: ref.scriptId.toLowerCase(), scope: 'build', attempt: ref.version, ttlSeconds: buildTokenTtlSeconds });
}

/** Checks that the token was signed for this version's build; throws Unauthenticated or PermissionDenied. */
export async function assertBuildToken(secret: string, token: string, ref: ScriptBuildRef): Promise<void> {
  if (!token) throw new Unauthenticated('The build token of the version is required', 'authorization_required');
  const claims = await verifyScopedToken(kind, secret, token, ['build']);
  if (claims.subject !== ref.scriptId.toLowerCase() || claims.attempt !== ref.version) {
    throw new PermissionDenied('This build token belongs to another build', 'forbidden');
  }
}
