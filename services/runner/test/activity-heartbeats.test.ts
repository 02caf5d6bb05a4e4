import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createLogger } from '@gef/common';
import type { PreparedEnvironment, RunScriptResult } from '@gef/workflows/activities';
import { prepareEnvironmentActivity } from '../src/activities/prepare-environment';
import { runScriptActivity, type AttemptGrant, type AttemptResult, type ExecutionsApi } from '../src/activities/run-script';
import { ArchiveCache, type ArchiveSource } from '../src/archives/archive-cache';
import { ExtractedArchives } from '../src/archives/extracted-archives';
import type { EnvironmentSettings } from '../src/environments/ensure-environment';
import type { LogBatch, NumberedLine } from '../src/execution-log/execution-log-sink';
import { Fixture, isRoot, makeArchive, python } from './support/run-script-fixture';

const logger = createLogger('test', 'silent');
const executionId = '0b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e';
const heartbeatIntervalMs = 100;
/** Activities here fail on purpose: the SDK's warning for each is left out. */
const mockActivityEnvironment = () => new MockActivityEnvironment({ attempt: 1 }, { logger: new DefaultLogger('ERROR') });

/**
 * A call to a service that is away: answered once `count` heartbeats came while it waited, or
 * after `maxMs` (an activity that does not heartbeat then has none to show). The heartbeats'
 * details, as they came.
 */
function heartbeatsWhileWaiting(env: MockActivityEnvironment, count = 3, maxMs = 3000): Promise<unknown[]> {
  return new Promise((resolve) => {
    const seen: unknown[] = [];
    const onBeat = (details: unknown) => {
      seen.push(details);
      if (seen.length >= count) done();
    };
    const timer = setTimeout(done, maxMs);
    function done() {
      clearTimeout(timer);
      env.off('heartbeat', onBeat);
      resolve(seen);
    }
    env.on('heartbeat', onBeat);
  });
}

/** A call that is answered only when it is abandoned (its signal aborts); never without a signal. */
function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    const abort = () => reject(Object.assign(new Error('the call was abandoned'), { name: 'AbortError' }));
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
  });
}

/** Fails with `message` if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

/** The execution service as the runner sees it, each call awaiting the test's hook first. */
class WaitingExecutions implements ExecutionsApi {
  lines: NumberedLine[] = [];
  completed: AttemptResult[] = [];
  startSignal: AbortSignal | undefined;
  completeSignal: AbortSignal | undefined;
  beforeStart: (signal?: AbortSignal) => Promise<unknown> = async () => undefined;
  beforeComplete: (signal?: AbortSignal) => Promise<unknown> = async () => undefined;

  constructor(private readonly grant: AttemptGrant) {}

  async startAttempt(_id: string, _attempt: number, _runner: string, signal?: AbortSignal): Promise<AttemptGrant> {
    this.startSignal = signal;
    await this.beforeStart(signal);
    return this.grant;
  }

  async appendLogs(_id: string, _token: string, batch: LogBatch) {
    this.lines.push(...batch.lines);
    return { stop: false, stopReason: '', status: 'RUNNING' };
  }

  async completeAttempt(result: AttemptResult, signal?: AbortSignal) {
    this.completeSignal = signal;
    await this.beforeComplete(signal);
    this.completed.push(result);
    this.lines.push(...result.lines);
    return { applied: true, status: result.status };
  }

  texts(): string[] {
    return this.lines.map((l) => l.text);
  }
}

// The execution service (or its database) may be away for longer than the heartbeat timeout
// while a run starts or ends, and each call waits for it: the activities heartbeat for their
// whole life, not only while the script runs or the environment is built, or Temporal gives
// the attempt up (a finished script run again, a run or build failed for nothing).
describe('runner activities heartbeat while they wait for the services', () => {
  let fixture: Fixture;
  let environments: EnvironmentSettings;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off').init();
    environments = { dataDir: fixture.dirs.root, python, processEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, pipTimeoutMs: 60_000 };
  });
  afterAll(async () => {
    await fixture.cleanup();
  });

  function setupRun(main: string) {
    const archive = makeArchive(fixture.tmp, { 'configuration.json': '{"name":"t"}', 'src/main.py': main });
    const bytes = fs.readFileSync(archive);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const executions = new WaitingExecutions({
      proceed: true,
      reason: '',
      status: 'RUNNING',
      token: 'script-token',
      runnerToken: 'runner-token',
      paramsJson: '{}',
      userId: 'user',
      spec: { scriptId: 'script', version: 1, digest, size: bytes.length, runtime: 'python3', environmentHash: '', requirements: '', cpuLimit: 0, memoryLimit: 0, timeoutSeconds: 30, scriptUserId: 'owner' },
    });
    const source: ArchiveSource = async function* () {
      yield bytes;
    };
    const activity = runScriptActivity({
      executions,
      archives: new ArchiveCache(fixture.dirs.archives, source),
      extracted: new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox),
      sandbox: fixture.sandbox,
      baseEnv: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' },
      environments,
      shim: fixture.shim,
      envName: 'test',
      apiUrl: 'http://127.0.0.1:3000',
      locale: { LANG: 'C.UTF-8' },
      defaults: { memoryBytes: 1024 ** 3, processes: 64, openFiles: 256, fileBytes: 1024 ** 3 },
      killGraceMs: 500,
      heartbeatIntervalMs,
      logFlushMs: 20,
      logMaxLines: 1000,
      logMaxBytes: 1024 ** 2,
      logger,
    });
    const env = mockActivityEnvironment();
    return { executions, env, run: () => env.run(activity, { executionId }) as Promise<RunScriptResult> };
  }

  it('heartbeats while the attempt is taken and while its outcome is recorded, with the progress of the moment', async () => {
    const t = setupRun('def run(params, logger):\n    logger.send_progress(42)\n    return {"ok": True}\n');
    let duringStart: unknown[] = [];
    let duringComplete: unknown[] = [];
    t.executions.beforeStart = async () => (duringStart = await heartbeatsWhileWaiting(t.env));
    t.executions.beforeComplete = async () => (duringComplete = await heartbeatsWhileWaiting(t.env));
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    // Before the script started: no progress yet. After it ended: its last.
    expect(duringStart).toEqual([{ progress: 0 }, { progress: 0 }, { progress: 0 }]);
    expect(duringComplete).toEqual([{ progress: 42 }, { progress: 42 }, { progress: 42 }]);
    expect(t.executions.completed[0]).toMatchObject({ status: 'FINISHED', resultsJson: '{"ok":true}', progress: 42 });
  }, 60_000);

  it('stops waiting for the attempt when the workflow cancels it, the script not run', async () => {
    const t = setupRun('def run(params, logger):\n    logger.info("the script ran")\n    return 1\n');
    t.executions.beforeStart = (signal) => untilAborted(signal);
    const running = t.run();
    setTimeout(() => t.env.cancel(), 300);
    await expect(within(running, 10_000, 'the activity still waits for the attempt')).rejects.toBeInstanceOf(CancelledFailure);
    expect(t.executions.startSignal?.aborted).toBe(true);
    expect(t.executions.completed).toEqual([]);
    expect(t.executions.texts()).not.toContain('the script ran');
  }, 60_000);

  it('does not start the script when a cancel came while the attempt was being taken', async () => {
    const t = setupRun('def run(params, logger):\n    logger.info("the script ran")\n    return 1\n');
    // The service's answer was on its way when the cancel came: the grant arrives all the same.
    t.executions.beforeStart = () => new Promise((resolve) => t.env.context.cancellationSignal.addEventListener('abort', resolve, { once: true }));
    const running = t.run();
    setTimeout(() => t.env.cancel(), 300);
    await expect(within(running, 20_000, 'the run went on')).rejects.toBeInstanceOf(CancelledFailure);
    expect(t.executions.texts()).not.toContain('the script ran');
    expect(t.executions.completed[0]).toMatchObject({ status: 'CANCELLED' });
    expect(t.executions.texts()).toContain('Cancellation requested: the script was not started');
  }, 60_000);

  it('stops waiting to record the outcome once the attempt is lost (timed out), not on a cancel', async () => {
    const lost = setupRun('def run(params, logger):\n    return 1\n');
    lost.executions.beforeComplete = (signal) => {
      setTimeout(() => lost.env.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true })), 300);
      return untilAborted(signal);
    };
    await expect(within(lost.run(), 10_000, 'the activity still waits for the outcome')).rejects.toThrow('the runner stopped before the outcome was recorded');
    expect(lost.executions.completeSignal?.aborted).toBe(true);

    // A cancel the workflow asked for once the script ended: the outcome is still recorded.
    const cancelled = setupRun('def run(params, logger):\n    return 1\n');
    cancelled.executions.beforeComplete = async () => {
      cancelled.env.cancel();
      await new Promise((r) => setTimeout(r, 300));
    };
    await cancelled.run();
    expect(cancelled.executions.completeSignal?.aborted).toBe(false);
    expect(cancelled.executions.completed[0]).toMatchObject({ status: 'FINISHED' });
  }, 60_000);

  function setupBuild(appendBuildLog: (lines: string[], signal?: AbortSignal) => Promise<void>) {
    const activity = prepareEnvironmentActivity({
      environments,
      appendBuildLog: (_ref, lines, _firstSeq, signal) => appendBuildLog(lines, signal),
      buildRequirements: async () => '',
      logger,
      heartbeatIntervalMs,
    });
    const env = mockActivityEnvironment();
    return { env, run: () => env.run(activity, { scriptId: 'script', version: 1, buildToken: 'build-token', runtime: 'python3' }) as Promise<PreparedEnvironment> };
  }

  it("heartbeats while a build's last log lines wait for the script service", async () => {
    const sent: string[] = [];
    let duringLastLines: unknown[] | undefined;
    const t = setupBuild(async (lines) => {
      // The batch with the build's last line: the service is away for a while.
      if (lines.some((l) => /^environment [0-9a-f]{12} (ready|reused)$/.test(l))) duringLastLines = await heartbeatsWhileWaiting(t.env);
      sent.push(...lines);
    });
    expect(await t.run()).toMatchObject({ environmentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(sent.at(-1)).toMatch(/^environment [0-9a-f]{12} (ready|reused)$/);
    expect(duringLastLines).toHaveLength(3);
  }, 60_000);

  it("stops waiting for a build's last log lines once its attempt is lost", async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const t = setupBuild((lines, signal) => {
      if (!lines.some((l) => /^environment [0-9a-f]{12} (ready|reused)$/.test(l))) return Promise.resolve();
      signals.push(signal);
      if (signals.length === 1) setTimeout(() => t.env.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true })), 300);
      return untilAborted(signal);
    });
    await within(t.run(), 10_000, 'the build still waits for its log');
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s?.aborted)).toBe(true);
  }, 60_000);
});
