import { Unauthenticated } from '@gef/common';
import { verifyExecutionToken, type ExecutionTokenClaims, type ExecutionTokenScope } from '@gef/common/execution-token';
import type { ExecutionRecord } from '../repositories/execution-repository';
import { assertMayWrite, executionNotFound, requireActor, type Actor } from './actor';
import { isTerminal } from './statuses';

/** Who changes an execution: a user, or an execution token (a running script or its runner). */
export type Credential = { kind: 'user'; actor: Actor } | { kind: 'token'; claims: ExecutionTokenClaims };

/** The request's credential: the token when one is given, else the caller. */
export async function credentialOf(
  secret: string,
  caller: Actor | undefined,
  token: string | undefined,
  scopes: readonly ExecutionTokenScope[],
): Promise<Credential> {
  if (token) return { kind: 'token', claims: await verifyExecutionToken(secret, token, scopes) };
  return { kind: 'user', actor: requireActor(caller) };
}

/**
 * A token names one execution: to it every other one does not exist (404, as what a user
 * may not see), so a script cannot even learn that another id is taken.
 */
export function assertTokenFor(credential: Credential, executionId: string): void {
  if (credential.kind === 'token' && credential.claims.executionId !== executionId) throw executionNotFound();
}

/**
 * Whether a credential may change this execution now. Users: ADMIN+. A script's token:
 * only its own execution, only while it has no terminal status and no later attempt
 * exists (checked at every use). A runner's token: its own execution; whether its attempt
 * is current is the caller's business (it is answered with a stop, not an error).
 */
export function assertMayChange(credential: Credential, execution: ExecutionRecord): void {
  if (credential.kind === 'user') {
    assertMayWrite(credential.actor, execution);
    return;
  }
  assertTokenFor(credential, execution.id);
  const { claims } = credential;
  if (claims.scope === 'execution') {
    if (isTerminal(execution.status)) {
      throw new Unauthenticated(`The execution token is no longer valid: the execution is ${execution.status}`, 'invalid_token');
    }
    if (claims.attempt < execution.attempt) {
      throw new Unauthenticated('The execution token is no longer valid: a later attempt runs the execution', 'invalid_token');
    }
  }
}

/** What a token shown in text is replaced with, as the runner does in what a script prints. */
export const redactedMark = '[redacted]';

/**
 * `text` without the request's own token in it: a script that sends its API_TOKEN in a log
 * line or in its results (its environment printed, say) does not store it for the owner and
 * the admins to read. The runner does the same to what the script prints.
 */
export function withoutOwnToken(text: string, token: string | undefined): string {
  return token && text.includes(token) ? text.replaceAll(token, redactedMark) : text;
}
