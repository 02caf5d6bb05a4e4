/**
 * Records the histories that `test/replay.test.ts` replays: every workflow through its main
 * paths, on a Temporal dev server of its own (the machine's `temporal` v1.5.1 binary, never
 * a download) with fake activities, one JSON history per path in `histories/`.
 *
 *   npm run record-histories --workspace workflows [-- --tag <tag>] [--only <prefix>] [--force]
 *                                                  [--workflows <index.ts>] [--out <dir>]
 *
 * Files are named `<workflow>-<case>-<tag>.json`; the tag is today's date (UTC) unless given
 * (e.g. the name of a `patched()` id). A file that exists is kept unless `--force`: histories
 * made by older code are the point, never overwrite them. `--only runExecution` (or
 * `--only runExecution-cancelled`) records only the histories whose name starts so.
 * `--workflows` records another copy of the workflows (e.g. an older commit exported with
 * `git archive <rev> workflows/src | tar -x -C /tmp/old`), `--out` writes elsewhere.
 *
 * Test code, not workflow code: it runs in Node beside the workers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type {
  ClaimSlotResult,
  ExecutionActivities,
  ExecutionRunActivities,
  PreparedEnvironment,
  PrepareEnvironmentInput,
  RunnerActivities,
  RunnerRunActivities,
  RunScriptResult,
  ScriptActivities,
  ScriptBuildPlan,
  UserActivities,
} from '../../src/activities';
import {
  buildScript,
  buildScriptWorkflowId,
  deleteUser,
  deleteUserWorkflowId,
  gefScriptIdKey,
  gefStatusKey,
  gefUserIdKey,
  passwordLinkWorkflowId,
  runExecution,
  runExecutionWorkflowId,
  sendPasswordLink,
  stopExecutionSignal,
  type RunExecutionInput,
} from '../../src/index';
import { taskQueues } from '../../src/task-queues';
import { exportedWorkflowNames, historiesDir } from './histories';
import { testTemporalCli } from '@gef/deploy';


/**
 * A workflow's history as JSON, as the CLI writes it for replays (`historyToJSON` of SDK
 * 1.13 throws on payload metadata with proto3-json-serializer 2.0.2).
 */
function showHistory(cli: string, address: string, workflowId: string): string {
  const args = ['workflow', 'show', '--workflow-id', workflowId, '--address', address, '--namespace', 'default'];
  args.push('--output', 'json', '--no-json-shorthand-payloads', '--disable-config-file', '--disable-config-env', '--color', 'never');
  const shown = spawnSync(cli, args, { encoding: 'utf8', timeout: 30_000 });
  if (shown.status !== 0) throw new Error(`temporal workflow show ${workflowId} failed: ${shown.stderr || shown.error?.message}`);
  return shown.stdout.endsWith('\n') ? shown.stdout : `${shown.stdout}\n`;
}

/** Named moments the fakes reach, for cases that act in the middle of a run. */
class Milestones {
  private readonly all = new Map<string, { reached: Promise<void>; reach: () => void }>();

  private get(name: string) {
    let entry = this.all.get(name);
    if (!entry) {
      let reach!: () => void;
      const reached = new Promise<void>((resolve) => (reach = resolve));
      entry = { reached, reach };
      this.all.set(name, entry);
    }
    return entry;
  }

  reach(name: string): void {
    this.get(name).reach();
  }

  async wait(name: string, timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.get(name).reached,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`never reached: ${name}`)), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

type RunBehaviour = (attempt: number) => Promise<RunScriptResult>;

/**
 * The services' and runners' activities, answering minimal plausible values. Per-case
 * behaviour is keyed by the id the case uses (execution, script).
 */
class Fakes {
  readonly milestones = new Milestones();
  /** claimExecutionSlot answers in order, by execution; the last one repeats. */
  readonly claims = new Map<string, ClaimSlotResult[]>();
  /** releaseExecutionSlot's runs to wake, by execution. */
  readonly wakes = new Map<string, string[]>();
  readonly runs = new Map<string, RunBehaviour>();
  readonly plans = new Map<string, ScriptBuildPlan>();
  readonly builds = new Map<string, (input: PrepareEnvironmentInput) => Promise<PreparedEnvironment>>();
  /** Waited for before a build's start answers, by script. */
  readonly startGates = new Map<string, Promise<void>>();
  /** Waited for before a user's runs are deleted, by user. */
  readonly deletionGates = new Map<string, Promise<void>>();

  /** Hosted by the execution service (`gef-execution`; the run path as local activities). */
  execution(): ExecutionRunActivities & ExecutionActivities {
    return {
      claimExecutionSlot: async ({ executionId }) => {
        const answers = this.claims.get(executionId) ?? [{ outcome: 'granted' }];
        const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
        this.milestones.reach(`${answer.outcome}:${executionId}`);
        return answer;
      },
      releaseExecutionSlot: async ({ executionId }) => ({ wake: this.wakes.get(executionId) ?? [] }),
      endExecution: async ({ status }) => ({ status }),
      deleteExecutionsOfUser: async (userId) => {
        this.milestones.reach(`deleting:${userId}`);
        await this.deletionGates.get(userId);
        return { executions: 3 };
      },
    };
  }

  /** Hosted by the script service (`gef-script`; the build's state changes as local activities). */
  script(): ScriptActivities {
    return {
      startScriptBuild: async (ref) => {
        this.milestones.reach(`starting:${ref.scriptId}`);
        await this.startGates.get(ref.scriptId);
        return this.plans.get(ref.scriptId) ?? {
          proceed: true,
          runtime: 'python3',
          requirements: 'numpy==2.1.0\n',
          buildToken: 'build-token',
          archive: { digest: 'a'.repeat(64), size: 1024, scriptUserId: 'user-1' },
        };
      },
      finishScriptBuild: async () => undefined,
      deleteScriptsOfUser: async () => ({ scripts: 2 }),
    };
  }

  /** Hosted by the user service (`gef-user`). */
  user(): UserActivities {
    return {
      deleteKeycloakUser: async () => ({ deleted: true }),
      deleteUserProfile: async () => ({ deleted: true }),
      notifyExecutionFinished: async () => ({ sent: true }),
      sendPasswordLink: async () => ({ sent: true }),
    };
  }

  /** Hosted by every runner (`gef-runner`). */
  runner(): RunnerActivities & RunnerRunActivities {
    return {
      describeRunner: async () => ({ hostname: 'runner-1', runtimes: [{ name: 'python3', version: '3.12' }], sandbox: { setpriv: true, prlimit: true } }),
      prepareEnvironment: async (input) => {
        const build = this.builds.get(input.scriptId);
        return build ? build(input) : { environmentHash: 'e'.repeat(64), reused: false, hostname: 'runner-1' };
      },
      runScript: async ({ executionId }) => {
        const attempt = Context.current().info.attempt;
        this.milestones.reach(`run:${executionId}:${attempt}`);
        const behaviour = this.runs.get(executionId);
        return behaviour ? behaviour(attempt) : { outcome: 'FINISHED', status: 'FINISHED' };
      },
    };
  }
}

/** A runner attempt that heartbeats until it is cancelled, then stops and throws (as the runner does). */
async function runUntilCancelled(): Promise<RunScriptResult> {
  const ctx = Context.current();
  const heartbeat = setInterval(() => ctx.heartbeat({ progress: 10 }), 300);
  try {
    await ctx.cancelled;
    throw new Error('unreachable: a cancelled activity rejects');
  } finally {
    clearInterval(heartbeat);
  }
}

interface Recording {
  /** `<workflow>-<case>`. */
  name: string;
  workflowId: string;
}

interface Scenario {
  /** The histories it records, `<workflow>-<case>`. */
  names: string[];
  run(ctx: { client: Client; fakes: Fakes }): Promise<Recording[]>;
}

/** The workflow's own result, or the failure it ended with. */
async function outcome(handle: WorkflowHandle): Promise<unknown> {
  try {
    return await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) return { failed: err.cause?.name ?? err.name };
    throw err;
  }
}

const runInput = (executionId: string, over: Partial<RunExecutionInput> = {}): RunExecutionInput => ({
  executionId,
  userId: 'user-1',
  scriptId: 'script-1',
  scriptName: 'NDVI trends',
  concurrencyLimit: 3,
  timeoutSeconds: 60,
  prepareTimeoutSeconds: 60,
  heartbeatTimeoutSeconds: 5,
  maxAttempts: 3,
  ...over,
});

/** Starts a run as the execution service does (TemporalRunLauncher). */
function startRun(client: Client, input: RunExecutionInput) {
  return client.workflow.start(runExecution, {
    taskQueue: taskQueues.execution,
    workflowId: runExecutionWorkflowId(input.executionId),
    args: [input],
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: gefUserIdKey, value: input.userId },
      { key: gefScriptIdKey, value: input.scriptId },
      { key: gefStatusKey, value: input.slotGranted ? 'READY' : 'PENDING' },
    ],
  });
}

const executionId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** One run on its own: its case name, what the fakes do, what is done to it, its result. */
function runCase(
  name: string,
  n: number,
  over: Partial<RunExecutionInput>,
  setup: (fakes: Fakes, id: string) => void,
  expected: unknown,
  act?: (handle: WorkflowHandle<typeof runExecution>, fakes: Fakes, id: string) => Promise<void>,
): Scenario {
  return {
    names: [`runExecution-${name}`],
    async run({ client, fakes }) {
      const id = executionId(n);
      setup(fakes, id);
      const handle = await startRun(client, runInput(id, over));
      await act?.(handle, fakes, id);
      assert.deepEqual(await outcome(handle), expected, `runExecution-${name}`);
      return [{ name: `runExecution-${name}`, workflowId: handle.workflowId }];
    },
  };
}

function buildCase(name: string, scriptId: string, setup: (fakes: Fakes) => void, expectedStatus: string): Scenario {
  return {
    names: [`buildScript-${name}`],
    async run({ client, fakes }) {
      setup(fakes);
      const ref = { scriptId, version: 1 };
      const handle = await client.workflow.start(buildScript, { taskQueue: taskQueues.script, workflowId: buildScriptWorkflowId(ref), args: [ref] });
      const result = await handle.result();
      assert.equal(result.status, expectedStatus, `buildScript-${name}`);
      return [{ name: `buildScript-${name}`, workflowId: handle.workflowId }];
    },
  };
}

const scenarios: Scenario[] = [
  buildCase('success', 'script-build-ok', () => undefined, 'SUCCESS'),
  buildCase(
    'failure',
    'script-build-fail',
    (fakes) =>
      fakes.builds.set('script-build-fail', async () => {
        throw ApplicationFailure.nonRetryable('numpy==0.0.0: no matching distribution', 'InvalidRequirements');
      }),
    'FAIL',
  ),
  buildCase('skipped', 'script-build-gone', (fakes) => fakes.plans.set('script-build-gone', { proceed: false, reason: 'the version is gone' }), 'SKIPPED'),
  // Cancelled by an operator while the runner prepares the environment: ends FAIL, recorded.
  {
    names: ['buildScript-cancelled-by-operator'],
    async run({ client, fakes }) {
      let started!: () => void;
      const preparing = new Promise<void>((resolve) => (started = resolve));
      fakes.builds.set('script-build-cancelled', async () => {
        started();
        await new Promise((resolve) => setTimeout(resolve, 2000));
        return { environmentHash: 'e'.repeat(64), reused: false, hostname: 'runner-1' };
      });
      const ref = { scriptId: 'script-build-cancelled', version: 1 };
      const handle = await client.workflow.start(buildScript, { taskQueue: taskQueues.script, workflowId: buildScriptWorkflowId(ref), args: [ref] });
      await preparing;
      await handle.cancel();
      await assert.rejects(handle.result(), WorkflowFailedError, 'buildScript-cancelled-by-operator');
      return [{ name: 'buildScript-cancelled-by-operator', workflowId: handle.workflowId }];
    },
  },

  // Took its slot when accepted: straight to a runner.
  runCase('finished-slot-granted', 1, { slotGranted: true }, () => undefined, { executionId: executionId(1), status: 'FINISHED' }),
  // ADMIN (no limit), not opted in to e-mails: claims, runs, nothing to release or mail.
  runCase('finished-unlimited', 2, { concurrencyLimit: null, notifyOwner: false }, () => undefined, { executionId: executionId(2), status: 'FINISHED' }),
  // Two runs of a user with one slot: the first finishes and wakes the second, which waited.
  {
    names: ['runExecution-finished-woke-next', 'runExecution-waited-then-finished'],
    async run({ client, fakes }) {
      const [first, second] = [executionId(3), executionId(4)];
      fakes.wakes.set(first, [second]);
      fakes.claims.set(second, [{ outcome: 'waiting' }, { outcome: 'granted' }]);
      fakes.runs.set(first, async () => {
        await fakes.milestones.wait(`waiting:${second}`);
        return { outcome: 'FINISHED', status: 'FINISHED' };
      });
      const a = await startRun(client, runInput(first, { userId: 'user-2', concurrencyLimit: 1 }));
      await fakes.milestones.wait(`run:${first}:1`);
      const b = await startRun(client, runInput(second, { userId: 'user-2', concurrencyLimit: 1 }));
      assert.deepEqual(await outcome(a), { executionId: first, status: 'FINISHED' });
      assert.deepEqual(await outcome(b), { executionId: second, status: 'FINISHED' });
      return [
        { name: 'runExecution-finished-woke-next', workflowId: a.workflowId },
        { name: 'runExecution-waited-then-finished', workflowId: b.workflowId },
      ];
    },
  },
  // CancelExecution while a runner runs it: the runner stops the process, the run ends CANCELLED.
  runCase(
    'cancelled-running',
    5,
    {},
    (fakes, id) => fakes.runs.set(id, runUntilCancelled),
    { executionId: executionId(5), status: 'CANCELLED' },
    async (handle, fakes, id) => {
      await fakes.milestones.wait(`run:${id}:1`);
      await handle.signal(stopExecutionSignal, { reason: 'cancel' });
    },
  ),
  // CancelExecution while it waits for a slot (the service made it CANCELLED already).
  runCase(
    'cancelled-waiting',
    6,
    { concurrencyLimit: 1 },
    (fakes, id) => fakes.claims.set(id, [{ outcome: 'waiting' }]),
    { executionId: executionId(6), status: 'CANCELLED' },
    async (handle, fakes, id) => {
      await fakes.milestones.wait(`waiting:${id}`);
      await handle.signal(stopExecutionSignal, { reason: 'cancel' });
    },
  ),
  // Cancelled while no runner held it: the runner's attempt finds it CANCELLING and skips.
  runCase(
    'cancelled-before-runner',
    7,
    { slotGranted: true },
    (fakes, id) => fakes.runs.set(id, async () => ({ outcome: 'SKIPPED', status: 'CANCELLING' })),
    { executionId: executionId(7), status: 'CANCELLED' },
  ),
  // An operator cancels the workflow in Temporal while a runner runs it.
  runCase(
    'cancelled-by-operator',
    8,
    {},
    (fakes, id) => fakes.runs.set(id, runUntilCancelled),
    { failed: 'CancelledFailure' },
    async (handle, fakes, id) => {
      await fakes.milestones.wait(`run:${id}:1`);
      await handle.cancel();
    },
  ),
  // A terminal status set from outside while it runs (e.g. an admin marks it FAILED).
  runCase(
    'stopped-from-outside',
    9,
    {},
    (fakes, id) => fakes.runs.set(id, runUntilCancelled),
    { executionId: executionId(9), status: 'FAILED' },
    async (handle, fakes, id) => {
      await fakes.milestones.wait(`run:${id}:1`);
      await handle.signal(stopExecutionSignal, { reason: 'terminal', status: 'FAILED' });
    },
  ),
  // The first runner's attempt fails; the retry (on whichever runner takes it) finishes.
  runCase(
    'retried-on-another-runner',
    10,
    {},
    (fakes, id) =>
      fakes.runs.set(id, async (attempt) => {
        if (attempt === 1) throw ApplicationFailure.retryable('runner-1 lost its sandbox', 'RunnerLost');
        return { outcome: 'FINISHED', status: 'FINISHED' };
      }),
    { executionId: executionId(10), status: 'FINISHED' },
  ),
  // Every runner attempt fails: the run ends FAILED with the reason (endExecution).
  runCase(
    'failed-on-runner',
    11,
    { maxAttempts: 2 },
    (fakes, id) =>
      fakes.runs.set(id, async () => {
        throw ApplicationFailure.retryable('the sandbox could not start', 'SandboxUnavailable');
      }),
    { executionId: executionId(11), status: 'FAILED' },
  ),

  // Cancelled by an operator while the build is being started: ends FAIL, recorded.
  {
    names: ['buildScript-cancelled-while-starting'],
    async run({ client, fakes }) {
      let letGo!: () => void;
      fakes.startGates.set('script-build-cancelled-starting', new Promise<void>((resolve) => (letGo = resolve)));
      const ref = { scriptId: 'script-build-cancelled-starting', version: 1 };
      // A short task timeout: the local activity's task is heartbeated, and the cancel delivered, within 1.6 s.
      const handle = await client.workflow.start(buildScript, { taskQueue: taskQueues.script, workflowId: buildScriptWorkflowId(ref), args: [ref], workflowTaskTimeout: '2s' });
      await fakes.milestones.wait(`starting:${ref.scriptId}`);
      await handle.cancel();
      setTimeout(letGo, 4000);
      await assert.rejects(handle.result(), WorkflowFailedError, 'buildScript-cancelled-while-starting');
      letGo();
      return [{ name: 'buildScript-cancelled-while-starting', workflowId: handle.workflowId }];
    },
  },
  // Cancelled by an operator halfway: the deletion finishes all the same.
  {
    names: ['deleteUser-cancelled-halfway'],
    async run({ client, fakes }) {
      let letGo!: () => void;
      fakes.deletionGates.set('user-10', new Promise<void>((resolve) => (letGo = resolve)));
      const handle = await client.workflow.start(deleteUser, { taskQueue: taskQueues.user, workflowId: deleteUserWorkflowId('user-10'), args: [{ userId: 'user-10' }] });
      await fakes.milestones.wait('deleting:user-10');
      await handle.cancel();
      setTimeout(letGo, 500);
      assert.deepEqual(await handle.result(), { userId: 'user-10', scripts: 2, executions: 3, keycloakUserDeleted: true, profileDeleted: true });
      return [{ name: 'deleteUser-cancelled-halfway', workflowId: handle.workflowId }];
    },
  },
  {
    names: ['deleteUser-saga'],
    async run({ client }) {
      const handle = await client.workflow.start(deleteUser, { taskQueue: taskQueues.user, workflowId: deleteUserWorkflowId('user-9'), args: [{ userId: 'user-9' }] });
      assert.deepEqual(await handle.result(), { userId: 'user-9', scripts: 2, executions: 3, keycloakUserDeleted: true, profileDeleted: true });
      return [{ name: 'deleteUser-saga', workflowId: handle.workflowId }];
    },
  },
  {
    names: ['sendPasswordLink-sent'],
    async run({ client }) {
      const request = { userId: 'user-1', purpose: 'reset' as const, requestId: '00000000-0000-4000-8000-0000000000aa' };
      const handle = await client.workflow.start(sendPasswordLink, { taskQueue: taskQueues.user, workflowId: passwordLinkWorkflowId(request.requestId), args: [request] });
      assert.deepEqual(await handle.result(), { sent: true });
      return [{ name: 'sendPasswordLink-sent', workflowId: handle.workflowId }];
    },
  },
];

interface Options {
  tag: string;
  only: string | undefined;
  force: boolean;
  /** The workflows' entry file to record (default this checkout's src/index.ts). */
  workflowsPath: string;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    tag: new Date().toISOString().slice(0, 10),
    only: undefined,
    force: false,
    workflowsPath: require.resolve('../../src/index.ts'),
    out: historiesDir,
  };
  const value = (i: number) => {
    const v = argv[i];
    if (v === undefined || v.startsWith('--')) throw new Error(`${argv[i - 1]} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--tag') options.tag = value(++i);
    else if (arg === '--only') options.only = value(++i);
    else if (arg === '--force') options.force = true;
    else if (arg === '--workflows') options.workflowsPath = path.resolve(value(++i));
    else if (arg === '--out') options.out = path.resolve(value(++i));
    else throw new Error(`unknown argument ${arg} (--tag <tag>, --only <prefix>, --force, --workflows <index.ts>, --out <dir>)`);
  }
  if (!/^[A-Za-z0-9._]+(?:-[A-Za-z0-9._]+)*$/.test(options.tag)) throw new Error(`--tag must be letters, digits, dots, underscores and dashes: ${options.tag}`);
  return options;
}

/** A case that does not end in a minute is stuck (e.g. recording code that lacks its workflow). */
async function withinAMinute<T>(names: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${names}: did not end within a minute`)), 60_000)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const { tag, only, force, workflowsPath, out } = parseArgs(process.argv.slice(2));
  const covered = new Set(scenarios.flatMap((s) => s.names.map((name) => name.slice(0, name.indexOf('-')))));
  const missing = exportedWorkflowNames().filter((name) => !covered.has(name));
  if (missing.length) throw new Error(`no recording case for the exported workflow(s) ${missing.join(', ')}: add one to ${path.relative(process.cwd(), __filename)}`);

  const fileOf = (name: string) => path.join(out, `${name}-${tag}.json`);
  const wanted = (name: string) => (only === undefined || name.startsWith(only)) && (force || !fs.existsSync(fileOf(name)));
  for (const name of scenarios.flatMap((s) => s.names)) {
    if ((only === undefined || name.startsWith(only)) && !wanted(name)) console.log(`kept     ${path.basename(fileOf(name))} (exists; --force to record it again)`);
  }
  const selected = scenarios.filter((s) => s.names.some(wanted));
  if (selected.length === 0) {
    console.log('nothing to record');
    return;
  }

  const cli = testTemporalCli();
  console.log(`Temporal dev server from ${cli}; workflows from ${path.relative(process.cwd(), workflowsPath)}`);

  // Failing activities are part of the cases: keep the workers quiet.
  Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: cli }, searchAttributes: [gefUserIdKey, gefScriptIdKey, gefStatusKey] },
  });
  try {
    const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const workflowBundle = await bundleWorkflowCode({ workflowsPath, logger: quiet });
    const fakes = new Fakes();
    const identity = 'gef-replay-recorder';
    const connection = env.nativeConnection;
    const workers = await Promise.all([
      Worker.create({ connection, identity, taskQueue: taskQueues.execution, workflowBundle, activities: fakes.execution() }),
      Worker.create({ connection, identity, taskQueue: taskQueues.script, workflowBundle, activities: fakes.script() }),
      Worker.create({ connection, identity, taskQueue: taskQueues.user, workflowBundle, activities: fakes.user() }),
      Worker.create({ connection, identity, taskQueue: taskQueues.runner, activities: fakes.runner() }),
    ]);
    const client = new Client({ connection: env.connection, identity });

    // The cases run side by side (their ids differ), the workers around them all.
    const recordings = await workers.reduce<() => Promise<Recording[]>>(
      (body, worker) => () => worker.runUntil(body()),
      async () => (await Promise.all(selected.map((s) => withinAMinute(s.names.join(', '), s.run({ client, fakes }))))).flat(),
    )();

    fs.mkdirSync(out, { recursive: true });
    let written = 0;
    for (const { name, workflowId } of recordings.filter((r) => wanted(r.name)).sort((a, b) => a.name.localeCompare(b.name))) {
      const history = showHistory(cli, env.address, workflowId);
      fs.writeFileSync(fileOf(name), history);
      console.log(`recorded ${path.basename(fileOf(name))} (${(JSON.parse(history) as { events: unknown[] }).events.length} events)`);
      written++;
    }
    console.log(`${written} histor${written === 1 ? 'y' : 'ies'} written to ${path.relative(process.cwd(), out) || '.'}`);
  } finally {
    await env.teardown();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
