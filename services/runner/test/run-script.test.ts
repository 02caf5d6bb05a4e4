import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createLogger } from '@gef/common';
import type { RunScriptResult } from '@gef/workflows/activities';
import { runScriptActivity, type AttemptGrant, type AttemptResult, type ExecutionsApi } from '../src/activities/run-script';
import { ArchiveCache, type ArchiveSource } from '../src/archives/archive-cache';
import { ArchiveGone } from '../src/archives/script-service-source';
import { ExtractedArchives } from '../src/archives/extracted-archives';
import { EnvironmentCache } from '../src/environments/environment-cache';
import type { EnvironmentSettings } from '../src/environments/ensure-environment';
import { ExecutionLogSink, type LogBatch, type NumberedLine } from '../src/execution-log/execution-log-sink';
import { InterpreterPool } from '../src/runtimes/python/interpreter-pool';
import { Fixture, isRoot, makeArchive, python } from './support/run-script-fixture';

const logger = createLogger('test', 'silent');
const executionId = '0b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e';

/** The execution service as the runner sees it, recording what it is told. */
class FakeExecutions implements ExecutionsApi {
  lines: NumberedLine[] = [];
  batches: LogBatch[] = [];
  completed: AttemptResult[] = [];
  reply = { stop: false, stopReason: '', status: 'RUNNING' };
  /** Answer `reply` only once a line with this text has arrived (RUNNING before). */
  replyAfter: string | undefined;
  proceed = true;

  constructor(private readonly grant: Omit<AttemptGrant, 'proceed' | 'reason' | 'status'>) {}

  /** Called as the attempt is granted (before the runner has its answer). */
  onStart: (() => void) | undefined;

  /** Failures the next calls to startAttempt answer with, one each. */
  startFailures: Error[] = [];

  async startAttempt(): Promise<AttemptGrant> {
    const failure = this.startFailures.shift();
    if (failure) throw failure;
    this.onStart?.();
    return this.proceed ? { ...this.grant, proceed: true, reason: '', status: 'RUNNING' } : { ...this.grant, proceed: false, reason: 'ended', status: 'CANCELLED' };
  }

  /** Awaited before each append is answered. */
  gate: (() => Promise<void>) | undefined;

  /** appendLogs answers Unavailable while this holds (the service away). */
  appendAway = false;
  /** Failures the next calls to completeAttempt answer with, one each. */
  completeFailures: Error[] = [];

  async appendLogs(_id: string, _token: string, batch: LogBatch) {
    await this.gate?.();
    if (this.appendAway) throw new ConnectError('Service unavailable; try again shortly', Code.Unavailable);
    FakeExecutions.checkSize(batch.lines);
    this.batches.push(batch);
    this.lines.push(...batch.lines);
    if (this.replyAfter && !this.texts().includes(this.replyAfter)) return { stop: false, stopReason: '', status: 'RUNNING' };
    return this.reply;
  }

  async completeAttempt(result: AttemptResult) {
    const failure = this.completeFailures.shift();
    if (failure) throw failure;
    FakeExecutions.checkSize(result.lines);
    this.completed.push(result);
    this.lines.push(...result.lines);
    // A run ended from outside keeps its status; the outcome only delivers the lines.
    return this.reply.stopReason === 'terminal' ? { applied: false, status: this.reply.status } : { applied: true, status: result.status };
  }

  texts(): string[] {
    return this.lines.map((l) => l.text);
  }

  /** The service's limit of lines per request (maxLinesPerAppend). */
  private static checkSize(lines: NumberedLine[]): void {
    if (lines.length > 10_000) throw new ConnectError('At most 10000 lines per request', Code.InvalidArgument);
  }
}

// The runner activity end to end on this machine: a real environment (venv), the archive
// caches, the sandbox and python3, each script in an interpreter of its own or one of the
// pool's, spawned or forked by the fork server; the execution service and Temporal are fakes.
describe.each([
  ['its own interpreter', 0, false],
  ['a pooled interpreter', 2, false],
  ['pooled interpreters forked by the fork server', 2, true],
])('runScript activity, %s', (_name, poolSize, forked) => {
  let fixture: Fixture;
  let pool: InterpreterPool | undefined;
  let extracted: ExtractedArchives;
  const baseEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
  const defaults = { memoryBytes: 1024 ** 3, processes: 64, openFiles: 256, fileBytes: 1024 ** 3 };

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off', forked).init();
    extracted = new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox);
    if (poolSize > 0) {
      pool = new InterpreterPool({ sandbox: fixture.sandbox, python, shim: fixture.shim, size: poolSize, limits: { ...defaults, cpuSeconds: Infinity }, env: baseEnv, ...(fixture.forkServer ? { forkServer: fixture.forkServer } : {}), logger });
      pool.start();
    }
  });
  afterAll(async () => {
    await pool?.stop();
    await fixture.cleanup();
  });

  async function setup(
    main: string,
    over: {
      timeoutSeconds?: number;
      attempt?: number;
      /** The runner activity's retry policy's maximum attempts. */
      maxAttempts?: number;
      gone?: boolean;
      unreachable?: boolean | Error;
      logMaxBytes?: number;
      logMaxLines?: number;
      /** The runner's disk quota (none without it). */
      disk?: { maxBytes: number; checkMs: number; maxEntries?: number };
      /** More files in the archive. */
      files?: Record<string, string>;
      /** Caches of the test's own (else the describe's extracted trees and a fresh archive cache). */
      archives?: (source: ArchiveSource, digest: string) => ArchiveCache;
      extracted?: ExtractedArchives;
      environments?: EnvironmentSettings;
      /** Called as the archive is fetched (the environment ready). */
      onDownload?: () => void;
    } = {},
  ) {
    const archive = makeArchive(fixture.tmp, { 'configuration.json': '{"name":"t"}', 'src/main.py': main, ...over.files });
    const bytes = fs.readFileSync(archive);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const executions = new FakeExecutions({
      token: 'script-token',
      runnerToken: 'runner-token',
      paramsJson: '{"n": 3}',
      userId: 'user',
      spec: {
        scriptId: 'script',
        version: 1,
        digest,
        size: bytes.length,
        runtime: 'python3',
        environmentHash: '',
        requirements: '',
        cpuLimit: 0,
        memoryLimit: 0,
        timeoutSeconds: over.timeoutSeconds ?? 30,
        scriptUserId: 'owner',
      },
    });
    const downloads: string[] = [];
    const source: ArchiveSource = async function* (ref) {
      downloads.push(ref.digest);
      over.onDownload?.();
      if (over.gone) throw new ArchiveGone('The script was deleted before this run could start');
      if (over.unreachable) throw over.unreachable instanceof Error ? over.unreachable : new Error('the archive store did not answer');
      yield bytes;
    };
    const activity = runScriptActivity({
      executions,
      archives: over.archives ? over.archives(source, digest) : new ArchiveCache(fixture.dirs.archives, source),
      extracted: over.extracted ?? extracted,
      sandbox: fixture.sandbox,
      ...(pool ? { pool } : {}),
      ...(fixture.forkServer ? { forkServer: fixture.forkServer } : {}),
      baseEnv,
      environments: over.environments ?? { dataDir: fixture.dirs.root, python, processEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, pipTimeoutMs: 60_000 },
      shim: fixture.shim,
      envName: 'test',
      apiUrl: 'http://127.0.0.1:3000',
      locale: { LANG: 'C.UTF-8' },
      defaults,
      killGraceMs: 500,
      ...(over.disk ? { disk: over.disk } : {}),
      heartbeatIntervalMs: 100,
      logFlushMs: 20,
      logMaxLines: over.logMaxLines ?? 1000,
      logMaxBytes: over.logMaxBytes ?? 256 * 1024 ** 2,
      logger,
    });
    const env = new MockActivityEnvironment({ attempt: over.attempt ?? 1, ...(over.maxAttempts ? { retryPolicy: { maximumAttempts: over.maxAttempts } } : {}) });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    return { executions, env, heartbeats, downloads, digest, run: () => env.run(activity, { executionId }) as Promise<RunScriptResult> };
  }

  it('runs the script and records FINISHED with its results and numbered lines, heartbeating progress', async () => {
    const t = await setup('def run(params, logger):\n    logger.info("n is %d", params["n"])\n    logger.send_progress(33.3)\n    import time; time.sleep(0.3)\n    return {"double": params["n"] * 2}\n');
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const [done] = t.executions.completed;
    expect(done).toMatchObject({ executionId, runnerToken: 'runner-token', status: 'FINISHED', resultsJson: '{"double":6}' });
    expect(t.executions.texts()).toContain('n is 3');
    const seqs = t.executions.lines.map((l) => l.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
    expect(t.heartbeats).toContainEqual({ progress: 33.3 });
    // A second run of the same version uses the cached archive.
    const again = await setup('def run(params, logger):\n    return 1\n');
    await again.run();
    expect(again.downloads).toHaveLength(1);
  }, 60_000);

  it('keeps heartbeating while the lines a script left behind are delivered after it ended', async () => {
    const t = await setup('def run(params, logger):\n    for i in range(900):\n        logger.info("line %d", i)\n    return "OK"\n');
    // Each append is answered only once a heartbeat came after it was sent: without
    // heartbeats until the last line is delivered, the run never ends.
    t.executions.gate = () => new Promise((resolve) => t.env.once('heartbeat', () => resolve()));
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(t.executions.texts().filter((text) => text.startsWith('line '))).toEqual(Array.from({ length: 900 }, (_, i) => `line ${i}`));
  }, 60_000);

  it('drops the lines past the byte limit with one note, the run going on to its end', async () => {
    const t = await setup('def run(params, logger):\n    for i in range(100):\n        logger.info("%03d %s", i, "x" * 996)\n    logger.send_progress(100)\n    return "OK"\n', { logMaxBytes: 64 * 1024 });
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const texts = t.executions.texts();
    const note = 'The log reached 64 KiB; later lines of this attempt are dropped';
    expect(texts.filter((text) => text === note)).toHaveLength(1);
    // The note is the attempt's last line: the rest of the script's lines are dropped.
    expect(texts.at(-1)).toBe(note);
    const kept = texts.filter((text) => / x{996}$/.test(text)).map((text) => Number(text.slice(0, 3)));
    expect(kept).toEqual(kept.map((_, i) => i));
    expect(kept.length).toBeGreaterThan(55);
    expect(kept.length).toBeLessThan(66);
    expect(t.executions.lines.reduce((n, l) => n + (l.text === note ? 0 : Buffer.byteLength(l.text)), 0)).toBeLessThanOrEqual(64 * 1024);
    expect(t.executions.completed[0]).toMatchObject({ status: 'FINISHED', resultsJson: '"OK"' });
  }, 60_000);

  it('masks a token printed across the 32 KiB cut of a long line: no part of it is kept', async () => {
    const t = await setup('import os\ndef run(params, logger):\n    print("x" * (32768 - 20) + os.environ["API_TOKEN"] + "y" * 70000)\n    return "OK"\n');
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const line = t.executions.texts().find((text) => text.startsWith('xxxx'))!;
    expect(line.slice(32768 - 20, 32768 - 20 + '[redacted]'.length)).toBe('[redacted]');
    expect(line.endsWith(' [cut at 32768 characters]')).toBe(true);
  }, 60_000);

  it("keeps the runner's own lines after the script filled the log: a runaway loop's timeout is still said", async () => {
    const t = await setup('import time\ndef run(params, logger):\n    for i in range(500):\n        print("line %d" % i)\n    time.sleep(30)\n', { logMaxLines: 100, timeoutSeconds: 2 });
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    const texts = t.executions.texts();
    const full = texts.indexOf('The log reached 100 lines; later lines of this attempt are dropped');
    expect(full).toBeGreaterThan(0);
    expect(texts.filter((text) => text.startsWith('line '))).toHaveLength(99);
    expect(texts.slice(full)).toContain('The script exceeded its timeout of 2 s and was stopped');
  }, 60_000);

  it("stops reading a script's output while its lines wait to be delivered, and reads on once they are", async () => {
    // 21 MB of lines, then a progress report: it comes through the channel after the lines.
    const t = await setup('def run(params, logger):\n    for i in range(700):\n        logger.info("%03d %s", i, "y" * 29996)\n    logger.send_progress(50)\n    return "OK"\n');
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let appends = 0;
    t.executions.gate = () => {
      appends++;
      return released;
    };
    const running = t.run();
    try {
      for (let i = 0; i < 1500 && appends === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(appends).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 2000));
      // Held: the script waits in its writes, so its progress has not been read.
      expect(t.heartbeats).not.toContainEqual({ progress: 50 });
    } finally {
      release();
    }
    expect(await running).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(t.heartbeats).toContainEqual({ progress: 50 });
    const kept = t.executions.texts().filter((text) => / y{29996}$/.test(text)).map((text) => Number(text.slice(0, 3)));
    expect(kept).toEqual(Array.from({ length: 700 }, (_, i) => i));
  }, 60_000);

  it('keeps downloaded archives and extracted trees within their budgets, the least recently used removed first', async () => {
    // Each archive: ~130 KiB compressed, its tree ~260 KiB on disk. Room for two of each.
    const budgets = { archives: 330 * 1024, extracted: 700 * 1024 };
    const extractedHere = new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox, { maxBytes: budgets.extracted });
    // One cache for every run, downloading each archive from its run's source.
    const sources = new Map<string, ArchiveSource>();
    const shared = new ArchiveCache(fixture.dirs.archives, (ref) => sources.get(ref.digest)!(ref), { maxBytes: budgets.archives });
    const archivesHere = (source: ArchiveSource, digest: string) => {
      sources.set(digest, source);
      return shared;
    };
    const make = async (name: string) => {
      const t = await setup(`def run(params, logger):\n    return "${name}"\n`, { files: { 'data.txt': randomBytes(128 * 1024).toString('hex') }, archives: archivesHere, extracted: extractedHere });
      expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
      return t;
    };
    const onDisk = (digests: string[]) => ({
      extracted: digests.filter((d) => fs.existsSync(`${fixture.dirs.extracted}/${d}`)),
      archives: digests.filter((d) => fs.existsSync(`${fixture.dirs.archives}/${d}.tar.gz`)),
    });
    /** What is on disk once removals are done (they follow the run, once its references are given back). */
    const settled = async (digests: string[], want: { extracted: string[]; archives: string[] }) => {
      for (let i = 0; i < 100 && JSON.stringify(onDisk(digests)) !== JSON.stringify(want); i++) await new Promise((r) => setTimeout(r, 20));
      return onDisk(digests);
    };
    const a = await make('a');
    const b = await make('b');
    expect(await settled([a.digest, b.digest], { extracted: [a.digest, b.digest], archives: [a.digest, b.digest] })).toEqual({ extracted: [a.digest, b.digest], archives: [a.digest, b.digest] });
    const c = await make('c');
    const all = [a.digest, b.digest, c.digest];
    expect(await settled(all, { extracted: [b.digest, c.digest], archives: [b.digest, c.digest] })).toEqual({ extracted: [b.digest, c.digest], archives: [b.digest, c.digest] });
    // b runs again from its tree (no download): c's tree is now the least recently used.
    expect(await b.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(b.downloads).toHaveLength(1);
    const d = await make('d');
    all.push(d.digest);
    expect(await settled(all, { extracted: [b.digest, d.digest], archives: [c.digest, d.digest] })).toEqual({ extracted: [b.digest, d.digest], archives: [c.digest, d.digest] });
    // a, removed, is downloaded and extracted again when it runs again.
    expect(await a.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(a.downloads).toHaveLength(2);
    expect(a.executions.completed.at(-1)).toMatchObject({ status: 'FINISHED', resultsJson: '"a"' });
  }, 120_000);

  // Once is enough: the environment is the same whoever starts the interpreter.
  (poolSize === 0 ? it : it.skip)('keeps the environment of a running script past the budget, removes it once the run is over, and builds it again for the next run', async () => {
    const dataDir = fs.mkdtempSync(path.join(fixture.tmp, 'envs-'));
    fs.chmodSync(dataDir, 0o711);
    const envRoot = path.join(dataDir, 'environments');
    const cache = new EnvironmentCache(envRoot, { maxBytes: 0 });
    const environments: EnvironmentSettings = { dataDir, python, processEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, pipTimeoutMs: 60_000, cache };
    const main = 'import os, time\ndef run(params, logger):\n    logger.info("started")\n    time.sleep(1.5)\n    return os.path.exists(os.path.join(os.environ["PATH"].split(":")[0], "python"))\n';
    const t = await setup(main, { environments });
    const running = t.run();
    for (let i = 0; i < 1500 && !t.executions.texts().includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
    const [hash] = fs.readdirSync(envRoot).filter((name) => /^[0-9a-f]{64}$/.test(name));
    expect(hash).toBeDefined();
    const envDir = path.join(envRoot, hash!);
    // Another environment comes meanwhile (a build on this runner): past the budget (0), but
    // the running script's is in use.
    cache.added('f'.repeat(64), 1);
    await cache.idle();
    expect(fs.existsSync(envDir)).toBe(true);
    expect(await running).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(t.executions.completed[0]).toMatchObject({ resultsJson: 'true' });
    // Once the run is over (its processes gone), it is removed.
    for (let i = 0; i < 250 && fs.existsSync(envDir); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(envDir)).toBe(false);
    // The next run builds it again.
    const again = await setup('def run(params, logger):\n    return 1\n', { environments });
    expect(await again.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    expect(again.executions.texts()).toContain(`Environment: preparing environment ${hash!.slice(0, 12)} (0 requirements)`);
  }, 120_000);

  it('runs in a directory of its own named after the run, the run\'s environment set', async () => {
    const t = await setup('import os\ndef run(params, logger):\n    return {"cwd": os.path.basename(os.getcwd()), "home": os.environ["HOME"] == os.getcwd(), "id": os.environ["EXECUTION_ID"]}\n');
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const result = JSON.parse(t.executions.completed[0]!.resultsJson!) as { cwd: string; home: boolean; id: string };
    expect(result.cwd.startsWith(`${executionId}-a1-`)).toBe(true);
    expect(result).toMatchObject({ home: true, id: executionId });
  }, 60_000);

  it('records FAILED for an exception, with the traceback line and the last progress, sent already or not', async () => {
    const t = await setup('import time\ndef run(params, logger):\n    logger.send_progress(37)\n    time.sleep(0.5)\n    raise RuntimeError("boom")\n');
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    expect(t.executions.completed[0]).toMatchObject({ status: 'FAILED', progress: 37 });
    expect(t.executions.lines.find((l) => l.level === 'ERROR')?.text).toMatch(/Traceback[\s\S]*RuntimeError: boom/);
  }, 60_000);

  it('records FAILED at once, without a retry, when the script was deleted before the run started', async () => {
    const t = await setup(`def run(params, logger):\n    return "${randomUUID()}"\n`, { gone: true });
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    expect(t.executions.completed[0]).toMatchObject({ status: 'FAILED' });
    expect(t.executions.texts()).toContain('The script was deleted before this run could start');
  }, 60_000);

  it("fails an attempt this runner could not start, its last lines (why) delivered before the retry", async () => {
    const t = await setup('def run(params, logger):\n    return 1\n', { unreachable: true });
    await expect(t.run()).rejects.toThrow('the archive store did not answer');
    expect(t.executions.completed).toHaveLength(0);
    expect(t.executions.lines.at(-1)).toMatchObject({ level: 'WARNING', text: expect.stringMatching(/^This attempt failed on runner .*: the archive store did not answer$/) });
  }, 60_000);

  it("says what kind of trouble a platform service's error was, never its internal address", async () => {
    const t = await setup('def run(params, logger):\n    return 1\n', { unreachable: new ConnectError('connect ECONNREFUSED 10.1.2.3:50052', Code.Unavailable) });
    await expect(t.run()).rejects.toThrow('10.1.2.3');
    expect(t.executions.lines.at(-1)).toMatchObject({ level: 'WARNING', text: expect.stringMatching(/^This attempt failed on runner .*: a platform service could not be reached or did not answer \(Unavailable\)$/) });
    expect(t.executions.texts().join('\n')).not.toContain('10.1.2.3');
  }, 60_000);

  it('stops a run that makes more files than it may, empty ones too (they take no blocks, but inodes)', async () => {
    const main = 'import os, time\ndef run(params, logger):\n    for i in range(500):\n        open("f%d" % i, "w").close()\n    time.sleep(30)\n';
    const t = await setup(main, { disk: { maxBytes: 1024 ** 3, checkMs: 100, maxEntries: 200 } });
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    expect(t.executions.texts()).toContain('Disk quota exceeded: the script made more than 200 files and directories; the script was stopped');
  }, 60_000);

  (isRoot ? it : it.skip)('counts the files a run holds open after deleting them against its disk quota', async () => {
    const main = 'import os, time\ndef run(params, logger):\n    f = open("hidden", "wb")\n    os.unlink("hidden")\n    f.write(b"x" * (8 * 1024 * 1024))\n    f.flush()\n    time.sleep(30)\n';
    const t = await setup(main, { disk: { maxBytes: 4 * 1024 ** 2, checkMs: 100 } });
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    // Stopped as the file grows past the quota (the check may catch it before all 8 MiB are written).
    expect(t.executions.texts().find((l) => l.startsWith('Disk quota exceeded'))).toMatch(/^Disk quota exceeded: the script's files took [4-8] MiB, more than its limit of 4 MiB/);
  }, 60_000);

  it('records FAILED with a line saying so at the timeout', async () => {
    const t = await setup('import time\ndef run(params, logger):\n    time.sleep(30)\n', { timeoutSeconds: 1 });
    expect(await t.run()).toEqual({ outcome: 'FAILED', status: 'FAILED' });
    expect(t.executions.texts()).toContain('The script exceeded its timeout of 1 s and was stopped');
  }, 60_000);

  it('stops the script on cancellation (signal, grace, kill) and records CANCELLED', async () => {
    const t = await setup('import signal, time\ndef run(params, logger):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    logger.info("started")\n    time.sleep(30)\n');
    const running = t.run();
    // The script ignores SIGTERM only once it runs: cancelled before (a loaded machine can
    // take seconds to start it), it would stop at the signal.
    for (let i = 0; i < 1500 && !t.executions.texts().includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(t.executions.texts()).toContain('started');
    t.env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    expect(t.executions.completed[0]).toMatchObject({ status: 'CANCELLED' });
    expect(t.executions.texts()).toEqual(
      expect.arrayContaining(['Cancellation requested: stopping the script (SIGTERM, then SIGKILL after 1 s)', 'The script did not stop in time and was killed']),
    );
  }, 60_000);

  it.each([
    [2, 3, 'workerShutdown', 'The run starts again when a runner takes it (attempt 3 of 3)'],
    [3, 3, 'workerShutdown', undefined],
    [1, 3, 'timedOut', 'The run starts again when a runner takes it (attempt 2 of 3)'],
    // The workflow reset or terminated: nothing retries this attempt.
    [1, 3, 'notFound', undefined],
  ])('stops the script when its attempt ends on the runner (attempt %d of %d, %s), saying what follows', async (attempt, maxAttempts, why, next) => {
    const t = await setup('import time\ndef run(params, logger):\n    logger.info("started")\n    time.sleep(30)\n', { attempt, maxAttempts });
    const running = t.run();
    for (let i = 0; i < 1500 && !t.executions.texts().includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
    t.env.cancel(why === 'workerShutdown' ? 'WORKER_SHUTDOWN' : why === 'timedOut' ? 'TIMED_OUT' : 'NOT_FOUND', new ActivityCancellationDetails({ [why]: true }));
    await expect(running).rejects.toThrow('the runner stopped before the script ended');
    // Not the attempt's outcome: its last lines only, and the next attempt takes the run.
    expect(t.executions.completed).toEqual([]);
    const texts = t.executions.texts();
    const said = { workerShutdown: 'This runner is stopping', timedOut: 'Temporal gave this attempt up (it timed out)', notFound: 'Temporal gave this attempt up' }[why as 'workerShutdown' | 'timedOut' | 'notFound'];
    expect(texts.slice(texts.indexOf('started') + 1)).toEqual([
      `${said}: stopping the script (SIGTERM, then SIGKILL after 1 s)`,
      'The script stopped',
      ...(next ? [next] : []),
    ]);
  }, 60_000);

  it.each(['as the attempt is granted', 'once its environment is ready'])('starts no script once a stop is asked for %s, however long its reason takes to come', async (when) => {
    let cancel = () => undefined as void;
    const t = await setup('def run(params, logger):\n    logger.info("started")\n    return 1\n', when === 'as the attempt is granted' ? {} : { onDownload: () => cancel() });
    cancel = () => t.env.cancel();
    t.executions.reply = { stop: true, stopReason: 'cancel', status: 'CANCELLING' };
    if (when === 'as the attempt is granted') t.executions.onStart = cancel;
    // The service tells why half a second later: the run is ready to start long before.
    t.executions.gate = () => new Promise((resolve) => setTimeout(resolve, 500));
    await expect(t.run()).rejects.toBeInstanceOf(CancelledFailure);
    expect(t.executions.texts()).not.toContain('started');
    expect(t.executions.texts()).toContain('Cancellation requested: the script was not started');
    expect(t.executions.completed[0]).toMatchObject({ status: 'CANCELLED' });
  }, 60_000);

  it('stops when the service answers that the run ended from outside, leaving its status alone', async () => {
    const t = await setup('import time\ndef run(params, logger):\n    for i in range(300):\n        logger.info("tick %d", i)\n        time.sleep(0.05)\n');
    t.executions.reply = { stop: true, stopReason: 'terminal', status: 'FINISHED' };
    t.executions.replyAfter = 'tick 0';
    expect(await t.run()).toEqual({ outcome: 'STOPPED', status: 'FINISHED' });
    // The last lines go as the attempt's outcome (the service keeps the status set from outside).
    expect(t.executions.completed).toHaveLength(1);
    expect(t.executions.completed[0]!.lines.map((l) => l.text)).toContain('The script stopped');
    expect(t.executions.texts()).toContain('The execution was ended from outside: stopping the script (SIGTERM, then SIGKILL after 1 s)');
  }, 60_000);

  it('records the last lines of a run ended from outside while the service is away, and answers with its status', async () => {
    const t = await setup('import time\ndef run(params, logger):\n    for i in range(300):\n        logger.info("tick %d", i)\n        time.sleep(0.05)\n');
    t.executions.reply = { stop: true, stopReason: 'terminal', status: 'FAILED' };
    t.executions.replyAfter = 'tick 0';
    t.executions.completeFailures = [new ConnectError('away', Code.Unavailable), new ConnectError('slow', Code.DeadlineExceeded)];
    expect(await t.run()).toEqual({ outcome: 'STOPPED', status: 'FAILED' });
    expect(t.executions.completed).toHaveLength(1);
    expect(t.executions.texts()).toContain('The script stopped');
  }, 60_000);

  // Once is enough: how the lines are delivered does not depend on the interpreter.
  (poolSize === 0 ? it : it.skip)('delivers the lines left by a long outage in requests the service takes, the last with the outcome, without running the script again', async () => {
    const t = await setup('def run(params, logger):\n    for i in range(25000):\n        print("line %d" % i)\n    return "OK"\n', { logMaxLines: 100_000 });
    // Away while the script runs and until the sink gives its lines up (they wait for the outcome).
    t.executions.appendAway = true;
    const close = ExecutionLogSink.prototype.close;
    const closing = jest.spyOn(ExecutionLogSink.prototype, 'close').mockImplementation(async function (this: ExecutionLogSink) {
      const rest = await close.call(this);
      t.executions.appendAway = false;
      // Back, but the second request is not answered in time: it is sent again, the first is not.
      let asked = 0;
      t.executions.gate = async () => {
        if (++asked === 2) throw new ConnectError('no answer in time', Code.DeadlineExceeded);
      };
      return rest;
    });
    try {
      expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    } finally {
      closing.mockRestore();
    }
    // Every line waited for the outcome: two full requests first, the rest with it.
    expect(t.executions.batches.map((b) => b.lines.length)).toEqual([10_000, 10_000]);
    expect(t.executions.completed).toHaveLength(1);
    expect(t.executions.completed[0]).toMatchObject({ status: 'FINISHED', resultsJson: '"OK"' });
    expect(t.executions.completed[0]!.lines.length).toBeGreaterThanOrEqual(5_000);
    expect(t.executions.texts().filter((text) => text.startsWith('line '))).toEqual(Array.from({ length: 25000 }, (_, i) => `line ${i}`));
    const seqs = t.executions.lines.map((l) => l.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  }, 60_000);

  (poolSize === 0 ? it : it.skip)('delivers the lines left by a long outage in requests the service takes when the runner stops', async () => {
    const t = await setup('import time\ndef run(params, logger):\n    for i in range(25000):\n        print("line %d" % i)\n    logger.send_progress(1)\n    time.sleep(30)\n', { logMaxLines: 100_000 });
    t.executions.appendAway = true;
    const close = ExecutionLogSink.prototype.close;
    const closing = jest.spyOn(ExecutionLogSink.prototype, 'close').mockImplementation(async function (this: ExecutionLogSink) {
      const rest = await close.call(this);
      t.executions.appendAway = false;
      return rest;
    });
    try {
      const running = t.run();
      for (let i = 0; i < 1500 && !t.heartbeats.some((h) => (h as { progress: number }).progress === 1); i++) await new Promise((r) => setTimeout(r, 20));
      t.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
      await expect(running).rejects.toThrow('the runner stopped before the script ended');
    } finally {
      closing.mockRestore();
    }
    expect(t.executions.completed).toEqual([]);
    expect(t.executions.batches.map((b) => b.lines.length)).toEqual([10_000, 10_000, expect.any(Number)]);
    expect(t.executions.texts().filter((text) => text.startsWith('line '))).toEqual(Array.from({ length: 25000 }, (_, i) => `line ${i}`));
    expect(t.executions.texts()).toContain('The script stopped');
  }, 60_000);

  it('fails an attempt whose outcome the service refuses at once, without retrying it', async () => {
    const t = await setup('def run(params, logger):\n    return 1\n');
    t.executions.completeFailures = [new ConnectError('the runner token belongs to another execution', Code.InvalidArgument)];
    const started = Date.now();
    await expect(t.run()).rejects.toThrow('the runner token belongs to another execution');
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

  it("keeps the run's credentials out of its log and its results", async () => {
    const t = await setup('import os\ndef run(params, logger):\n    print(os.environ)\n    logger.info("token %s", os.environ["API_TOKEN"])\n    print("runner: runner-token")\n    return {"env": dict(os.environ)}\n');
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const results = JSON.parse(t.executions.completed[0]!.resultsJson!) as { env: Record<string, string> };
    expect(results.env['API_TOKEN']).toBe('[redacted]');
    expect(JSON.stringify(results)).not.toMatch(/script-token|runner-token/);
    const texts = t.executions.texts();
    expect(texts.filter((text) => text.includes('script-token') || text.includes('runner-token'))).toEqual([]);
    expect(texts).toEqual(expect.arrayContaining(['token [redacted]', 'runner: [redacted]', expect.stringContaining("'API_TOKEN': '[redacted]'")]));
  }, 60_000);

  it('waits for an execution service that is away when the attempt is taken; other refusals fail the attempt at once', async () => {
    const t = await setup('def run(params, logger):\n    return 1\n');
    t.executions.startFailures = [new ConnectError('away', Code.Unavailable), new ConnectError('slow', Code.DeadlineExceeded)];
    expect(await t.run()).toEqual({ outcome: 'FINISHED', status: 'FINISHED' });
    const refused = await setup('def run(params, logger):\n    return 1\n');
    refused.executions.startFailures = [new ConnectError('no run spec', Code.FailedPrecondition)];
    await expect(refused.run()).rejects.toThrow('no run spec');
  }, 60_000);

  it('does not start a run that ended or was cancelled meanwhile', async () => {
    const t = await setup('def run(params, logger):\n    return 1\n');
    t.executions.proceed = false;
    expect(await t.run()).toEqual({ outcome: 'SKIPPED', status: 'CANCELLED' });
    expect(t.executions.lines).toEqual([]);
  }, 60_000);
});
