import { CancelledFailure, Context } from '@temporalio/activity';

/**
 * Heartbeats a long activity and stops it once Temporal no longer wants it (its attempt
 * timed out, or the workflow was cancelled), so it does not go on beside a retry. Called
 * between the steps of an activity's work, inside that activity.
 */
export function stillWanted(): void {
  const ctx = Context.current();
  ctx.heartbeat();
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the attempt is no longer wanted');
}
