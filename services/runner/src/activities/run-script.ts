import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Logger } from '@gef/common';
import type { RunScriptHeartbeat, RunScriptInput, RunScriptResult } from '@gef/workflows/activities';
import { ownerMessage } from './owner-safe-failures';
import type { ArchiveCache, CachedPath } from '../archives/archive-cache';
import { ArchiveGone } from '../archives/script-service-source';
import type { ExtractedArchives } from '../archives/extracted-archives';
import { ensureEnvironment, type Environment, type EnvironmentSettings } from '../environments/ensure-environment';
import { EnvironmentError } from '../environments/environment-error';
import { attemptLostSignal } from './attempt-lost';
import { limitLine } from './limit-lines';
import { ExecutionLogSink, type BatchReply, type LineLevel, type LogBatch, type NumberedLine } from '../execution-log/execution-log-sink';
import type { ForkServer } from '../runtimes/python/fork-server';
import type { InterpreterPool } from '../runtimes/python/interpreter-pool';
import { PythonInterpreter, type PythonOutcome } from '../runtimes/python/run-python';
import { maxRunEntries, type Sandbox, type SandboxLimits, type SandboxRun } from '../sandbox/sandbox';
import { withoutUrlCredentials } from '../environments/url-credentials';

/** A run as the execution service hands it to a runner (StartExecutionAttempt). */
export interface AttemptGrant {
  proceed: boolean;
  reason: string;
  status: string;
  token: string;
  runnerToken: string;
  paramsJson: string;
  userId: string;
  spec: {
    scriptId: string;
    version: number;
    digest: string;
    size: number;
    runtime: string;
    environmentHash: string;
    requirements: string;
    cpuLimit: number;
    memoryLimit: number;
    timeoutSeconds: number;
    scriptUserId: string;
  };
}

export interface AttemptResult {
  executionId: string;
  runnerToken: string;
  status: 'FINISHED' | 'FAILED' | 'CANCELLED';
  resultsJson?: string;
  lines: NumberedLine[];
  progress?: number;
}

/** The execution service as a runner uses it (its runner RPCs). */
export interface ExecutionsApi {
  /** `signal`: the call is abandoned when it aborts (the activity was cancelled). */
  startAttempt(executionId: string, attempt: number, runner: string, signal?: AbortSignal): Promise<AttemptGrant>;
  appendLogs(executionId: string, runnerToken: string, batch: LogBatch): Promise<BatchReply>;
  /** `signal`: the call is abandoned when it aborts (the attempt was lost). */
  completeAttempt(result: AttemptResult, signal?: AbortSignal): Promise<{ applied: boolean; status: string }>;
}

export interface RunScriptDeps {
  executions: ExecutionsApi;
  archives: ArchiveCache;
  /** Archives extracted once per digest, copied into each run's directory. */
  extracted: ExtractedArchives;
  sandbox: Sandbox;
  /** Interpreters started ahead of their runs; without it each run starts its own. */
  pool?: InterpreterPool;
  /** Forks the interpreters a run starts itself (see ForkServer); without it they are spawned. */
  forkServer?: ForkServer;
  /** What an interpreter's environment is until its run's replaces it (PATH, locale). */
  baseEnv: Record<string, string>;
  environments: EnvironmentSettings;
  /** The runtime shim's installed path. */
  shim: string;
  /** What scripts get as ENV and API_URL. */
  envName: string;
  apiUrl: string;
  /** Locale variables passed to scripts (LANG, LC_*). */
  locale: Record<string, string>;
  defaults: Omit<SandboxLimits, 'cpuSeconds'>;
  /** What a run's files may take on disk, checked every `checkMs` (the run is stopped past it); none: no quota. */
  /** The disk quota of a run, checked every `checkMs`; `maxEntries`: its most files and directories (maxRunEntries). */
  disk?: { maxBytes: number; checkMs: number; maxEntries?: number };
  killGraceMs: number;
  heartbeatIntervalMs: number;
  logFlushMs: number;
  logMaxLines: number;
  /** Bytes of log text kept per attempt (RUN_LOG_MAX_BYTES); later lines are dropped with a note. */
  logMaxBytes: number;
  logger: Logger;
}

/** How an attempt must stop, from the service's answers or Temporal. */
type StopReason = 'cancel' | 'terminal' | 'superseded' | 'gone' | 'runner';
const serviceReasons: readonly string[] = ['cancel', 'terminal', 'superseded', 'gone'];

function describeExit(outcome: Extract<PythonOutcome, { kind: 'exited' }>, oomKills: number): string {
  if (outcome.signal === 'SIGKILL' && oomKills > 0) return 'it was killed (SIGKILL) for exceeding its memory limit';
  if (outcome.signal === 'SIGKILL') return 'it was killed (SIGKILL), most likely for exceeding its memory or CPU limit';
  if (outcome.signal === 'SIGXCPU') return 'it exceeded its CPU time limit';
  if (outcome.signal === 'SIGXFSZ') return 'it wrote a file larger than its file size limit';
  if (outcome.signal) return `it was ended by ${outcome.signal}`;
  return `exit code ${outcome.code}`;
}

/** Why the script is stopped, in words; a stop of the runner's own says which (`details`: Temporal's cancellation). */
function whyStopped(reason: string, details: Context['cancellationDetails']): string {
  if (reason === 'cancel') return 'Cancellation requested';
  if (reason === 'terminal') return 'The execution was ended from outside';
  if (reason === 'superseded') return 'A later attempt took over this run';
  if (reason === 'gone') return 'The execution was deleted';
  if (!details || details.workerShutdown) return 'This runner is stopping';
  if (details.timedOut) return 'Temporal gave this attempt up (it timed out)';
  return 'Temporal gave this attempt up';
}

/**
 * What follows an attempt its runner gave up (stopping, or the attempt lost): another
 * attempt, on whichever runner takes it. Undefined after the last attempt (the run fails,
 * with a line saying why).
 */
export function nextAttemptLine(info: Pick<Context['info'], 'attempt' | 'retryPolicy'>): string | undefined {
  const max = info.retryPolicy?.maximumAttempts;
  if (max && info.attempt >= max) return undefined;
  return `The run starts again when a runner takes it (attempt ${info.attempt + 1}${max ? ` of ${max}` : ''})`;
}

/** A failure that passes: the service or its database away, or an answer that did not come in time. */
const isPassing = (err: unknown): boolean => [Code.Unavailable, Code.DeadlineExceeded, Code.Aborted].includes(ConnectError.from(err).code);

/**
 * The service refused the request itself: sent again, it is refused again. Anything else
 * may pass (an outage, an internal failure such as a deadlock) and is worth waiting for
 * when the alternative is running a script that ended once more.
 */
const isRefusal = (err: unknown): boolean =>
  [
    Code.InvalidArgument,
    Code.FailedPrecondition,
    Code.OutOfRange,
    Code.NotFound,
    Code.AlreadyExists,
    Code.PermissionDenied,
    Code.Unauthenticated,
    Code.Unimplemented,
  ].includes(ConnectError.from(err).code);

/**
 * Retries a call to the execution service for a while (it may be restarting), until `signal`
 * aborts; only failures `retryable` says are passing (every failure without it).
 */
async function persistently<T>(call: () => Promise<T>, signal: AbortSignal, attempts = 30, retryable: (err: unknown) => boolean = () => true): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (i >= attempts || signal.aborted || !retryable(err)) throw err;
      await sleep(Math.min(5000, 100 * 2 ** Math.min(i, 6)), undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw err;
    }
  }
}

/**
 * The runner's part of a run (activity `runScript`, task queue `gef-runner`). Takes the
 * attempt, prepares the environment (built here when this runner lacks it) and the archive
 * (cached by digest), runs the script in the sandbox with the wall-clock timeout, streams its
 * lines and progress in batches, heartbeats the progress, and records the outcome with the
 * last lines. A cancel (Temporal cancellation, or the service's answer) stops the
 * process — SIGTERM, grace period, SIGKILL — with log lines saying so; a status set from
 * outside stops it the same way and is left as it is.
 */
export function runScriptActivity(deps: RunScriptDeps) {
  return async function runScript(input: RunScriptInput): Promise<RunScriptResult> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const hostname = os.hostname();
    /** The script's progress as the heartbeats carry it: none (0) before it reports any. */
    let progress = (): number => 0;
    const beat = () => ctx.heartbeat({ progress: progress() } satisfies RunScriptHeartbeat);
    // Heartbeats for the activity's whole life, from before the attempt is taken until its
    // outcome is recorded: each call to the execution service may wait for it (retrying while
    // it is unavailable) far longer than the heartbeat timeout, and an attempt whose
    // heartbeats stop is given up by Temporal (the script run again, or the run failed).
    // The first heartbeat comes after an interval (well inside the heartbeat timeout): a run
    // that ends sooner costs Temporal no heartbeat at all.
    const heartbeat = setInterval(beat, deps.heartbeatIntervalMs);
    /** Aborted when this attempt is lost (timed out, its worker stopping): its outcome is not waited for. */
    const lost = attemptLostSignal(ctx);
    try {
      // A service or database away for longer than the client's own retries is waited for
      // here too, as for the outcome: the run is not failed for an outage it never saw.
      const grant = await persistently(
        () => deps.executions.startAttempt(input.executionId, attempt, hostname, ctx.cancellationSignal),
        ctx.cancellationSignal,
        30,
        isPassing,
      ).catch((err: unknown) => {
        if (!ctx.cancellationSignal.aborted) throw err;
        // Cancelled while the service was being asked (heartbeats deliver cancellations from the start).
        throw ctx.cancellationDetails?.cancelRequested ? new CancelledFailure('cancelled before the run started') : new Error('the runner stopped before the run started');
      });
      if (!grant.proceed) return { outcome: 'SKIPPED', status: grant.status };

      let stopReason: StopReason | undefined;
      let stopProcess: ((reason: string) => void) | undefined;
      const requestStop = (reason: StopReason) => {
        if (stopReason) return;
        stopReason = reason;
        stopProcess?.(reason);
      };
      const sink = new ExecutionLogSink((batch) => deps.executions.appendLogs(input.executionId, grant.runnerToken, batch), deps.logger, {
        flushMs: deps.logFlushMs,
        maxLines: deps.logMaxLines,
        maxBytes: deps.logMaxBytes,
        onStop: (reason) => requestStop(serviceReasons.includes(reason) ? (reason as StopReason) : 'terminal'),
        // The run's credentials never reach its log: its script can print its environment.
        secrets: [grant.token, grant.runnerToken],
      });
      progress = () => sink.progress ?? 0;
      const append = (batch: LogBatch) => deps.executions.appendLogs(input.executionId, grant.runnerToken, batch);
      /**
       * The lines the sink handed back, in as many requests as the service takes them in
       * (it refuses more than 10,000 lines at once; a long outage leaves many more), the
       * progress with the last; the last answer. One try each: the attempt is given up.
       */
      const appendRest = async (rest: LogBatch): Promise<BatchReply> => {
        const requests = sink.inRequests(rest.lines);
        for (const lines of requests.slice(0, -1)) {
          const reply = await append({ lines });
          // Superseded or gone: the service stores no more lines of this attempt.
          if (reply.stop && (reply.stopReason === 'superseded' || reply.stopReason === 'gone')) return reply;
        }
        return append({ lines: requests.at(-1)!, ...(rest.progress !== undefined ? { progress: rest.progress } : {}) });
      };
      /**
       * Records how the attempt ended: the lines the sink handed back go first with
       * appendLogs, in requests the service takes, and the last request's worth with `outcome`.
       * Retried while the service may be away (a request answered already is not sent again),
       * never for a refusal; given up once the attempt is lost.
       */
      const withLastLines = <T>(lines: NumberedLine[], outcome: (last: NumberedLine[]) => Promise<T>): Promise<T> => {
        const requests = sink.inRequests(lines);
        let delivered = 0;
        return persistently(
          async () => {
            for (; delivered < requests.length - 1; delivered++) await append({ lines: requests[delivered]! });
            return outcome(requests[delivered]!);
          },
          lost,
          30,
          (err) => !isRefusal(err),
        );
      };
      /** Settles once the reason of a stop the workflow asked for is known (the script does not start meanwhile). */
      let reasonAsked: Promise<void> | undefined;
      const onCancel = () => {
        if (!ctx.cancellationDetails?.cancelRequested) {
          requestStop('runner');
          return;
        }
        // Cancelled by the workflow: a cancel, or a status set from outside. The service knows which.
        reasonAsked = deps.executions.appendLogs(input.executionId, grant.runnerToken, { lines: [] }).then(
          (reply) => requestStop(reply.stopReason && reply.stopReason !== 'cancel' && serviceReasons.includes(reply.stopReason) ? (reply.stopReason as StopReason) : 'cancel'),
          () => requestStop('cancel'),
        );
      };
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      // Cancelled while the attempt was being taken, its answer on its way already.
      if (ctx.cancellationSignal.aborted) onCancel();

      const spec = grant.spec;
      let outcome: PythonOutcome | undefined;
      let setupFailure: string | undefined;
      let sandboxRun: SandboxRun | undefined;
      let limits: SandboxLimits | undefined;
      /** The extracted archive, held from when it is found or made until it is copied. */
      let tree: CachedPath | undefined;
      /** The run's environment, held until the script's processes are gone. */
      let environment: Environment | undefined;
      let limitWatch: NodeJS.Timeout | undefined;
      /** What the run's files took when it was stopped for its disk quota. */
      let diskExceeded: { bytes: number; complete: boolean } | undefined;
      /** CPU seconds the run's processes had used together when it was stopped for them. */
      let cpuExceeded: number | undefined;
      let oomKills = 0;
      try {
        try {
          try {
            const env = await ensureEnvironment(deps.environments, spec.runtime, spec.requirements, {
              onLine: (line) => sink.line('DEBUG', `Environment: ${withoutUrlCredentials(line)}`),
              signal: ctx.cancellationSignal,
            });
            environment = env;
            if (spec.environmentHash && env.hash !== spec.environmentHash) {
              sink.note('WARNING', `Environment: this runner computed ${env.hash.slice(0, 12)}, the build recorded ${spec.environmentHash.slice(0, 12)}`);
            }
            const memoryBytes = spec.memoryLimit > 0 ? spec.memoryLimit : deps.defaults.memoryBytes;
            limits = {
              ...deps.defaults,
              memoryBytes,
              // CPU time: the wall-clock budget times the cores the script may use (cpu_limit,
              // fractions too: 0.5 is half a core), and a margin for the interpreter's start.
              cpuSeconds: spec.timeoutSeconds * (spec.cpuLimit > 0 ? spec.cpuLimit : 1) + 5,
            };
            // Extracted once per archive for every run of it (the archive downloaded only to
            // extract it): with the runner's default memory limit, not this run's (a tiny one
            // would fail every attempt at extraction). The tree is held until it is copied.
            tree = await deps.extracted.acquire(spec.digest.trim().toLowerCase(), { ...limits, memoryBytes: Math.max(limits.memoryBytes, deps.defaults.memoryBytes) }, () =>
              deps.archives.acquire(spec),
            );
            // A waiting interpreter of the pool (its own uid and directory), else one started now.
            const label = `${input.executionId}-a${attempt}`;
            const pooled = deps.pool?.take(limits);
            let interpreter = pooled;
            if (!interpreter) {
              const fresh = await deps.sandbox.open(label);
              interpreter = await PythonInterpreter.start({
                sandbox: fresh,
                python: deps.environments.python,
                shim: deps.shim,
                limits,
                env: { ...deps.baseEnv, HOME: fresh.dir },
                ...(deps.forkServer ? { forkServer: deps.forkServer } : {}),
              });
            }
            sandboxRun = interpreter.sandbox;
            if (stopReason) {
              interpreter.discard();
              throw new Error('stopped before the script started');
            }
            try {
              // A pooled interpreter's directory is named after its run, as a fresh one is.
              if (pooled) await sandboxRun.relabel(label);
              // All the run's processes together: a pooled interpreter was started with the default.
              await sandboxRun.limitMemory(limits.memoryBytes);
              await sandboxRun.populate(tree.path);
              // A stop asked for while the run was prepared: not one line of the script's.
              await reasonAsked;
              if (stopReason) throw new Error('stopped before the script started');
            } catch (err) {
              interpreter.discard();
              throw err;
            } finally {
              // The run has its own copy: the tree may be removed from now on.
              tree.release();
            }
            const params = JSON.parse(grant.paramsJson) as Record<string, unknown>;
            const running = interpreter.run({
              params,
              env: {
                EXECUTION_ID: input.executionId,
                ENV: deps.envName,
                API_URL: deps.apiUrl,
                API_TOKEN: grant.token,
                PATH: `${env.path}/bin:/usr/local/bin:/usr/bin:/bin`,
                HOME: sandboxRun.dir,
                ...deps.locale,
              },
              environment: env.path,
              limits,
              timeoutMs: spec.timeoutSeconds * 1000,
              killGraceMs: deps.killGraceMs,
              onLog: (level, text) => sink.line(level, text),
              // While too many lines wait to be delivered, the script's output is not read: it
              // waits in its writes instead of the runner's memory growing with them.
              backpressure: () => sink.backpressure(),
              onProgress: (value) => {
                sink.setProgress(value);
                beat();
              },
            });
            stopProcess = (reason) => {
              sink.note('INFO', `${whyStopped(reason, ctx.cancellationDetails)}: stopping the script (SIGTERM, then SIGKILL after ${Math.round(deps.killGraceMs / 1000)} s)`);
              running.stop(reason);
            };
            if (stopReason) stopProcess(stopReason);
            // The disk quota and the CPU time of the run's processes together: RLIMIT_FSIZE
            // bounds one file, not how many a script writes, and RLIMIT_CPU one process, not
            // how many it forks (CPU time is read from the run's memory group, where kept).
            const watched = sandboxRun;
            const disk = deps.disk;
            const maxCpuSeconds = limits.cpuSeconds;
            const cpuAtStart = watched.cpuSeconds();
            let checking = false;
            // Nothing to watch without a quota or a group that counts CPU time (no timer per run then).
            if (disk || cpuAtStart !== undefined) limitWatch = setInterval(() => {
              if (diskExceeded !== undefined || cpuExceeded !== undefined || stopReason) return;
              const cpu = cpuAtStart === undefined ? undefined : (watched.cpuSeconds() ?? cpuAtStart) - cpuAtStart;
              if (cpu !== undefined && cpu > maxCpuSeconds) {
                cpuExceeded = cpu;
                running.stop('cpu limit');
                watched.killFound();
                return;
              }
              if (!disk || checking) return;
              checking = true;
              void watched
                .diskUsage(disk.maxEntries)
                .then((usage) => {
                  if ((usage.complete && usage.bytes <= disk.maxBytes) || diskExceeded !== undefined || cpuExceeded !== undefined || stopReason) return;
                  diskExceeded = usage;
                  running.stop('disk quota');
                  watched.killFound();
                })
                .finally(() => (checking = false));
            }, disk?.checkMs ?? 1000);
            outcome = await running.outcome;
            // Ended: a stop's reason that comes now decides the outcome, with no line of stopping.
            stopProcess = undefined;
            oomKills = sandboxRun.oomKills();
          } catch (err) {
            // A stop asked for meanwhile (its reason on its way) is why preparing stopped.
            await reasonAsked;
            if (!stopReason) {
              if (err instanceof EnvironmentError && !err.retryable) {
                setupFailure = `The environment could not be prepared: ${err.message}`;
              } else if (err instanceof ArchiveGone) {
                // Another runner would find it gone too: the run fails now, not after retries.
                setupFailure = err.message;
              } else {
                // Anything else (archive download, a full disk…) is this runner's trouble: retried.
                sink.note('WARNING', `This attempt failed on runner ${hostname}: ${ownerMessage(err)}`);
                const rest = await sink.close();
                // The attempt's last lines say why it failed: delivered before the retry.
                await appendRest(rest).catch(() => undefined);
                throw err;
              }
            }
          }
        } finally {
          tree?.release();
          // Heartbeats go on until the attempt's lines are delivered and its outcome recorded
          // (below): a script that wrote faster than they are stored leaves many behind when it ends.
          clearInterval(limitWatch);
          ctx.cancellationSignal.removeEventListener('abort', onCancel);
        }

        // A stop asked for as the script ended: its reason first, so the outcome follows it.
        await reasonAsked;
        // The outcome, with the attempt's last lines.
        let status: AttemptResult['status'] = 'FAILED';
        let resultsJson: string | undefined;
        // The runner's own lines: kept even when the script filled the attempt's log.
        const line = (level: LineLevel, text: string) => sink.note(level, text);
        if (stopReason) {
          if (!outcome) line('INFO', `${whyStopped(stopReason, ctx.cancellationDetails)}: the script was not started`);
          else if (outcome.kind === 'stopped' || outcome.kind === 'timeout') {
            line('INFO', outcome.killed ? 'The script did not stop in time and was killed' : 'The script stopped');
          }
          if (stopReason === 'cancel') status = 'CANCELLED';
          // Until a runner takes it again the run shows nothing new: the log says what comes.
          // Given up by its worker stopping, or timed out: Temporal retries it (not when the
          // workflow was reset or terminated, or the activity paused).
          const details = ctx.cancellationDetails;
          const next = stopReason === 'runner' && (details?.workerShutdown || details?.timedOut) ? nextAttemptLine(ctx.info) : undefined;
          if (next) line('INFO', next);
        } else if (setupFailure) {
          line('ERROR', setupFailure);
        } else {
          // Which limit of the sandbox ended it, if one did (or killed one of its processes).
          const said =
            limits &&
            limitLine({
              outcome,
              limits,
              oomKills,
              maxDiskBytes: deps.disk?.maxBytes ?? Infinity,
              ...(diskExceeded !== undefined ? { diskBytes: diskExceeded.bytes, ...(diskExceeded.complete ? {} : { maxDiskEntries: deps.disk?.maxEntries ?? maxRunEntries }) } : {}),
              ...(cpuExceeded !== undefined ? { cpuSeconds: cpuExceeded } : {}),
            });
          if (said) line('ERROR', said);
          if (outcome?.kind === 'result' && diskExceeded === undefined && cpuExceeded === undefined) {
            status = 'FINISHED';
            resultsJson = sink.redact(outcome.resultJson);
          } else if (outcome?.kind === 'timeout') {
            line('ERROR', `The script exceeded its timeout of ${spec.timeoutSeconds} s and was stopped${outcome.killed ? ' (killed)' : ''}`);
          } else if (outcome?.kind === 'exited') {
            line('ERROR', `The script ended without a result: ${describeExit(outcome, oomKills)}`);
          }
        }
        const rest = await sink.close();

        if (stopReason === 'runner') {
          // The worker is shutting down or lost the run: another attempt takes over.
          await appendRest(rest).catch(() => undefined);
          throw new Error('the runner stopped before the script ended');
        }
        if (stopReason === 'terminal') {
          // Ended from outside: the last lines go as the attempt's outcome, which the service
          // stores without touching the status, and which tells the run's event streams that
          // no more lines will come (and lets the runner go). Its answer is the run's status.
          const reply = await withLastLines(rest.lines, (lines) =>
            deps.executions.completeAttempt({ executionId: input.executionId, runnerToken: grant.runnerToken, status, lines }, lost),
          ).catch((err: unknown) => {
            // The workflow ends the run with the status the service has.
            if (!lost.aborted) deps.logger.warn({ err: String(err), executionId: input.executionId }, 'the last lines of a run ended from outside were not recorded');
            return undefined;
          });
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('stopped');
          return { outcome: 'STOPPED', status: reply?.status ?? 'UNKNOWN' };
        }
        if (stopReason === 'superseded' || stopReason === 'gone') {
          // Superseded or gone: the lines alone.
          const reply = await appendRest(rest).catch(() => undefined);
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('stopped');
          return { outcome: 'STOPPED', status: reply?.status ?? 'UNKNOWN' };
        }
        const recorded = await withLastLines(rest.lines, (lines) =>
          deps.executions.completeAttempt(
            {
              executionId: input.executionId,
              runnerToken: grant.runnerToken,
              status,
              ...(resultsJson !== undefined ? { resultsJson } : {}),
              lines,
              // The script's last progress, sent already or not: a run that fails keeps it.
              ...(sink.progress !== undefined ? { progress: sink.progress } : {}),
            },
            lost,
          ),
        ).catch((err: unknown) => {
          // Timed out or the worker stopping: another attempt takes over.
          throw lost.aborted ? new Error('the runner stopped before the outcome was recorded') : err;
        });
        if (stopReason === 'cancel' && ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled');
        return { outcome: stopReason === 'cancel' ? 'CANCELLED' : status, status: recorded.status };
      } finally {
        // The script's processes are gone already (killed with their group when it ended).
        // The sweep for strays, the directory and the uid are cleared once the outcome is
        // recorded, off the path of the answer the run's client waits for: the sweep spawns
        // processes and scans /proc (the uid is not reused before it is done).
        // The environment is given back once nothing of the run can use it any more.
        void (sandboxRun?.close() ?? Promise.resolve())
          .catch((err: unknown) => deps.logger.warn({ err: String(err) }, 'run directory cleanup failed'))
          .finally(() => environment?.release());
      }
    } finally {
      clearInterval(heartbeat);
    }
  };
}
