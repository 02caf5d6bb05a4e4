import { Code, ConnectError } from '@connectrpc/connect';
import { ApplicationFailure } from '@temporalio/common';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput } from '@temporalio/worker';
import { createLogger } from '@gef/common';
import { ownerMessage, ownerSafeFailures } from '../src/activities/owner-safe-failures';
import { EnvironmentError } from '../src/environments/environment-error';

const ctx = { info: { activityType: 'runScript', workflowExecution: { workflowId: 'execution-1' } } } as unknown as Context;
const input = { args: [], headers: {} } as unknown as ActivityExecuteInput;

/** What an activity failing with `err` fails with, through the interceptor. */
async function failureOf(err: unknown): Promise<unknown> {
  const execute = ownerSafeFailures(createLogger('runner-test', 'silent'))(ctx).inbound!.execute!;
  try {
    await execute(input, async () => {
      throw err;
    });
  } catch (failure) {
    return failure;
  }
  throw new Error('expected a failure');
}

describe('failures as owners read them', () => {
  it("turn a platform service's error into a retryable failure without its address", async () => {
    const failure = await failureOf(new ConnectError('connect ECONNREFUSED 10.1.2.3:50052', Code.Unavailable));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ message: 'a platform service could not be reached or did not answer (Unavailable)', type: 'ServiceUnavailable', nonRetryable: false });
    expect(JSON.stringify(failure)).not.toContain('10.1.2.3');
    expect(ownerMessage(new ConnectError('No run spec for script 1234 version 2', Code.FailedPrecondition))).toBe("a platform service refused the runner's request (FailedPrecondition)");
  });

  it("turn a system call's error into what kind of trouble it was, without its path", async () => {
    const full = Object.assign(new Error("ENOSPC: no space left on device, write '/var/lib/gef/runner/runs/x'"), { code: 'ENOSPC', syscall: 'write' });
    expect(await failureOf(full)).toMatchObject({ message: "the runner's disk is full (ENOSPC)", type: 'SystemError', nonRetryable: false });
    const other = Object.assign(new Error("EACCES: permission denied, open '/var/lib/gef/runner/x'"), { code: 'EACCES' });
    expect(ownerMessage(other)).toBe('a system call failed on the runner (EACCES)');
  });

  it("leave the runner's own failures as they are", async () => {
    const environment = new EnvironmentError('requirements.txt: no such package', false);
    expect(await failureOf(environment)).toBe(environment);
    const crafted = ApplicationFailure.nonRetryable('The script was deleted', 'InvalidScript');
    expect(await failureOf(crafted)).toBe(crafted);
    expect(ownerMessage(new Error('the archive store did not answer'))).toBe('the archive store did not answer');
  });
});
