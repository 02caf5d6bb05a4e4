import type { Context } from '@temporalio/activity';

/**
 * Aborted when the activity is cancelled for anything but the workflow's request or its
 * worker shutting down: it timed out, the server no longer knows it, it was paused or reset.
 * The attempt is lost then, and what it still sends (its outcome, its last log lines) is no
 * longer waited for. A cancel the workflow asked for does not abort it: the run stops, and its
 * outcome and last lines are still recorded.
 */
export function attemptLostSignal(ctx: Context): AbortSignal {
  const lost = new AbortController();
  const check = () => {
    const details = ctx.cancellationDetails;
    // A worker shutting down still records what it has (its outcome may be on its way).
    if (!details?.cancelRequested && !details?.workerShutdown) lost.abort(ctx.cancellationSignal.reason);
  };
  if (ctx.cancellationSignal.aborted) check();
  else ctx.cancellationSignal.addEventListener('abort', check, { once: true });
  return lost.signal;
}
