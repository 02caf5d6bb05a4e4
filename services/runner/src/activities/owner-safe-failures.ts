import { ConnectError, Code } from '@connectrpc/connect';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Logger } from '@gef/common';

/** An error of a system call (`ENOSPC`, `ECONNREFUSED`…): its message names paths and addresses. */
const systemErrorCode = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
};

/** What a system error's code means to a script's owner. */
const systemErrors: Record<string, string> = {
  ENOSPC: "the runner's disk is full",
  EDQUOT: "the runner's disk quota is used up",
  EMFILE: 'the runner has too many files open',
  ENFILE: 'the runner has too many files open',
  ENOMEM: 'the runner is out of memory',
};

/**
 * What a run's or a build's owner may read of why an attempt failed on a runner: the
 * message of the runner's own errors (an environment that cannot be built, an archive gone),
 * but of a platform service's error or a system call's only what kind of trouble it was. Their
 * messages name the platform's internal addresses, ports and paths (`connect ECONNREFUSED
 * 10.1.2.3:50052`, `ENOSPC … '/var/lib/gef/runner/…'`), and they reach run logs, build logs
 * (a public script's readable by every user) and Temporal's history. Undefined: the message
 * may be shown as it is.
 */
export function ownerSafeMessage(err: unknown): string | undefined {
  if (err instanceof ConnectError) {
    const away = [Code.Unavailable, Code.DeadlineExceeded, Code.Canceled, Code.Unknown, Code.Internal, Code.ResourceExhausted].includes(err.code);
    return `a platform service ${away ? 'could not be reached or did not answer' : "refused the runner's request"} (${Code[err.code] ?? err.code})`;
  }
  const code = systemErrorCode(err);
  if (code) return `${systemErrors[code] ?? 'a system call failed on the runner'} (${code})`;
  return undefined;
}

/** `err`'s message as a run's or build's owner may read it (see `ownerSafeMessage`). */
export function ownerMessage(err: unknown): string {
  return ownerSafeMessage(err) ?? (err instanceof Error ? err.message : String(err));
}

/**
 * The runner's activities fail with what their owners may read: a platform service's or a
 * system call's error becomes a retryable failure saying what kind of trouble it was (its
 * whole text goes to the runner's own log), so no internal address reaches a run's last line,
 * a build's FAIL line or the workflow's history.
 */
export function ownerSafeFailures(logger: Logger): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          const message = ownerSafeMessage(err);
          if (message === undefined) throw err;
          logger.warn({ err, activity: ctx.info.activityType, workflowId: ctx.info.workflowExecution.workflowId }, `activity attempt failed: ${message}`);
          throw ApplicationFailure.create({ message, type: err instanceof ConnectError ? 'ServiceUnavailable' : 'SystemError', nonRetryable: false });
        }
      },
    },
  });
}
