import type { Context } from '@temporalio/activity';
import { attemptLostSignal } from '../src/activities/attempt-lost';

/** An activity context cancelled with these details. */
function cancelled(details: Record<string, boolean>): { ctx: Context; cancel: () => void } {
  const controller = new AbortController();
  const ctx = { cancellationSignal: controller.signal, cancellationDetails: undefined as unknown } as { cancellationSignal: AbortSignal; cancellationDetails: unknown };
  return {
    ctx: ctx as unknown as Context,
    cancel: () => {
      ctx.cancellationDetails = details;
      controller.abort(new Error('cancelled'));
    },
  };
}

describe('attemptLostSignal', () => {
  it.each([
    ['timed out', { timedOut: true }, true],
    ['unknown to the server', { notFound: true }, true],
    ['reset', { reset: true }, true],
    ['cancelled by the workflow', { cancelRequested: true }, false],
    ['its worker shutting down', { workerShutdown: true }, false],
  ])('%s: lost %s', (_name, details, lost) => {
    const { ctx, cancel } = cancelled(details);
    const signal = attemptLostSignal(ctx);
    expect(signal.aborted).toBe(false);
    cancel();
    expect(signal.aborted).toBe(lost);
  });
});
