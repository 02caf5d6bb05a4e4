import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { jsonDepthExceeds, maxJsonValueDepth } from '@gef/common';
import type { SandboxLimits, SandboxRun } from '../../sandbox/sandbox';
import type { ForkServer, InterpreterProcess, ProcessEnd, ProcessExit } from './fork-server';

export type ScriptLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

/** What an interpreter is started with, before it knows its run. */
export interface InterpreterStart {
  sandbox: SandboxRun;
  /** The interpreter environments are made from (a run's venv is entered with its job). */
  python: string;
  /** The runtime shim (gef_runtime.py). */
  shim: string;
  /** Limits at start: the job may only lower them. */
  limits: SandboxLimits;
  /** The process's environment until its job replaces it (nothing of the runner's). */
  env: Record<string, string>;
  /**
   * Started ahead of its run (the pool): its start-up yields the CPU to runs in progress
   * (nice 10) until its job gives it the runs' priority again. Only where the runner may
   * give that priority back (root); elsewhere it starts at the normal priority.
   */
  background?: boolean;
  /**
   * Forks the interpreter from one that has imported the shim already (a few ms of CPU
   * instead of ~50); without it, or when it fails, the interpreter is spawned.
   */
  forkServer?: ForkServer;
}

/** The nice value of interpreters started ahead of their runs. */
const backgroundNice = 10;

/** One run for an interpreter. */
export interface PythonJob {
  params: Record<string, unknown>;
  /** The script's whole environment (nothing else of the runner's reaches it). */
  env: Record<string, string>;
  /** The run's limits (each at most the start's). */
  limits: SandboxLimits;
  /** The run's virtual environment; none: the interpreter's own site-packages. */
  environment?: string;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  onLog: (level: ScriptLevel, text: string) => void;
  onProgress: (percent: number) => void;
  /**
   * Undefined while lines may come; else a promise that resolves when they may again. Till
   * then the script's output (channel, stdout, stderr) is not read, so a script writing faster
   * than its lines are delivered waits in its writes. Once the process has ended, the rest of
   * its output is read regardless.
   */
  backpressure?: () => Promise<void> | undefined;
}

export type PythonOutcome =
  | { kind: 'result'; resultJson: string }
  | { kind: 'failed'; message: string }
  /** The process ended without saying how (killed by a limit, os._exit, a crash). */
  | ({ kind: 'exited' } & ProcessExit)
  | { kind: 'timeout'; killed: boolean }
  | { kind: 'stopped'; reason: string; killed: boolean };

/** A running script: its outcome, and a way to stop it. */
export interface RunningPython {
  outcome: Promise<PythonOutcome>;
  /** Stops the process group: SIGTERM, then SIGKILL after the grace period. */
  stop(reason: string): void;
}

/** The longest message line read from the shim (a large result); beyond it the run fails. */
const maxMessageBytes = 64 * 1024 * 1024;
/** The longest plain output line kept; longer ones are cut. */
const maxOutputLine = 32 * 1024;
/** Output an interpreter writes before its job, kept for the job's log. */
const maxEarlyLines = 100;

const levels = new Set<ScriptLevel>(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']);
/** The longest delay a Node timer keeps (a longer one fires at once). */
const maxTimerMs = 2 ** 31 - 1;

/** A message's text: a string as it is, anything else as JSON (never throws). */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** A result as JSON text; undefined when it nests deeper than the platform stores results. */
function resultJsonOf(value: unknown): string | undefined {
  return jsonDepthExceeds(value, maxJsonValueDepth) ? undefined : JSON.stringify(value ?? null);
}

/** Whether a run's limits fit under an interpreter's start limits (setrlimit only lowers). */
export function limitsFit(run: SandboxLimits, start: SandboxLimits): boolean {
  return (
    run.memoryBytes <= start.memoryBytes &&
    run.cpuSeconds <= start.cpuSeconds &&
    run.processes <= start.processes &&
    run.openFiles <= start.openFiles &&
    run.fileBytes <= start.fileBytes
  );
}

/** Sets a process's nice value; false when it is gone or this process may not. */
function setNice(pid: number, value: number): boolean {
  // A priority is each thread's own on Linux: the shim's log thread, started while the
  // interpreter waited, kept the low one through the run when only the process was set.
  let threads: number[] = [];
  try {
    threads = readdirSync(`/proc/${pid}/task`).map(Number).filter((tid) => Number.isInteger(tid) && tid !== pid);
  } catch {
    // No /proc of it (it ended): the process alone.
  }
  try {
    os.setPriority(pid, value);
  } catch {
    return false;
  }
  for (const tid of threads) {
    try {
      os.setPriority(tid, value);
    } catch {
      // Ended meanwhile.
    }
  }
  return true;
}

/** A spawned process as an InterpreterProcess. */
function spawned(child: ChildProcess): InterpreterProcess {
  const exited = new Promise<ProcessEnd>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { pid: child.pid, stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, channel: child.stdio[3] as Readable, exited };
}

/**
 * Splits a stream into lines, at most `max` bytes each (the rest of a longer line is
 * `overflow`). After each chunk, `hold` may give a promise: the stream is paused until it
 * settles (the writer then waits once the pipe is full).
 */
function readLines(stream: Readable, max: number, onLine: (line: string) => void, onOverflow: () => void, hold: () => Promise<unknown> | undefined): Promise<void> {
  return new Promise((resolve) => {
    let pending: Buffer[] = [];
    let size = 0;
    let skipping = false;
    stream.on('data', (chunk: Buffer) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        const end = nl === -1 ? chunk.length : nl;
        if (!skipping) {
          const part = chunk.subarray(start, end);
          if (size + part.length > max) {
            pending.push(part.subarray(0, Math.max(0, max - size)));
            size = max;
            skipping = true;
            onOverflow();
          } else {
            pending.push(part);
            size += part.length;
          }
        }
        if (nl === -1) break;
        if (pending.length === 1 && !skipping) onLine(pending[0]!.toString('utf8'));
        else if (pending.length > 0 || !skipping) onLine(Buffer.concat(pending).toString('utf8'));
        pending = [];
        size = 0;
        skipping = false;
        start = nl + 1;
      }
      const wait = hold();
      if (wait) {
        stream.pause();
        void wait.then(() => stream.resume());
      }
    });
    stream.once('close', () => {
      if (size > 0) onLine(Buffer.concat(pending).toString('utf8'));
      resolve();
    });
    stream.once('error', () => resolve());
    // A stream handed over paused (a fork server's connection) flows from here.
    stream.resume();
  });
}

/**
 * A Python interpreter started in a sandbox run (its user, limits and directory) with the
 * shim, waiting for its one job: params on stdin, messages on fd 3, the script's raw
 * stdout and stderr (subprocesses, C code) as log lines too. Started ahead of its run by
 * the pool, or just in time. The process group is killed when the main process exits
 * (nothing a script leaves behind lives on), at the wall-clock timeout and on stop(); the
 * sandbox kills whatever escaped the group.
 */
export class PythonInterpreter {
  readonly sandbox: SandboxRun;
  readonly limits: SandboxLimits;
  /** Forked by a fork server (else spawned). */
  readonly forked: boolean;
  /** True once the shim said it waits for its job; false when the process ended first. */
  readonly ready: Promise<boolean>;
  /** When the process ended. */
  readonly exited: Promise<ProcessExit>;
  private readonly process: InterpreterProcess;
  private readonly reading: Promise<unknown>;
  private readonly channel: Readable;
  private exit: ProcessExit | undefined;
  private spawnError: Error | undefined;
  private onMessage: ((line: string) => void) | undefined;
  private onOutput: ((level: ScriptLevel, text: string) => void) | undefined;
  private backpressure: (() => Promise<void> | undefined) | undefined;
  private early: { level: ScriptLevel; text: string }[] = [];
  private saidReady = false;
  private taken = false;
  private niced = false;

  /**
   * An interpreter for a run: forked by the start's fork server when it has one, else (or
   * when forking fails) spawned.
   */
  static async start(start: InterpreterStart): Promise<PythonInterpreter> {
    if (start.forkServer) {
      const niced = Boolean(start.background && process.getuid?.() === 0);
      try {
        const forked = await start.forkServer.fork(start.sandbox.forkRequest(start.limits, start.env, niced ? backgroundNice : 0));
        return new PythonInterpreter(start, { process: forked, niced });
      } catch {
        // Spawned instead (the fork server said why in the log).
      }
    }
    return new PythonInterpreter(start);
  }

  constructor(start: InterpreterStart, forked?: { process: InterpreterProcess; niced: boolean }) {
    this.sandbox = start.sandbox;
    this.limits = start.limits;
    this.forked = forked !== undefined;
    if (forked) {
      this.process = forked.process;
      this.niced = forked.niced;
    } else {
      // -S: the site set-up happens with the job, in the run's venv.
      const { command, args } = start.sandbox.wrap(start.python, ['-I', '-S', '-u', '-B', '-X', 'utf8', start.shim], start.limits);
      this.process = spawned(spawn(command, args, { cwd: start.sandbox.dir, env: start.env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: true }));
      // The exec chain (sh, setpriv, prlimit, python) keeps the pid, and with it the priority.
      if (start.background && process.getuid?.() === 0 && this.process.pid) this.niced = setNice(this.process.pid, backgroundNice);
    }
    this.channel = this.process.channel;
    let markReady: (ready: boolean) => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    const output = (level: ScriptLevel) => (line: string) => {
      if (!line.trim()) return;
      if (this.onOutput) this.onOutput(level, line.trimEnd());
      else if (this.early.length < maxEarlyLines) this.early.push({ level, text: line.trimEnd() });
    };
    const hold = () => this.hold();
    this.reading = Promise.all([
      readLines(
        this.channel,
        maxMessageBytes,
        (line) => {
          if (!this.saidReady && line === '{"t":"ready"}') {
            this.saidReady = true;
            markReady(true);
            return;
          }
          this.onMessage?.(line);
        },
        () => this.onMessage?.('{"t":"overflow"}'),
        hold,
      ),
      readLines(this.process.stdout, maxOutputLine, output('INFO'), () => undefined, hold),
      readLines(this.process.stderr, maxOutputLine, output('WARNING'), () => undefined, hold),
    ]);
    this.process.stdin.on('error', () => undefined);
    this.exited = this.process.exited.then(({ code, signal, error }) => {
      this.exit = { code, signal };
      // Never started, or lost with the fork server: the runner's trouble, not the script's.
      if (error) this.spawnError = error;
      // Nothing the script started outlives it.
      this.signalGroup('SIGKILL');
      markReady(false);
      return this.exit;
    });
  }

  /**
   * While the process runs, the job's backpressure (reading waits for it); once it has
   * ended, nothing holds the rest of its output back (it is what the pipes still hold).
   */
  private hold(): Promise<unknown> | undefined {
    if (this.exit) return undefined;
    const wait = this.backpressure?.();
    return wait && Promise.race([wait, this.exited]);
  }

  /** The process's id (once spawned). */
  get pid(): number | undefined {
    return this.process.pid;
  }

  /** The shim said it waits for its job. */
  get isReady(): boolean {
    return this.saidReady;
  }

  /** The process is there and has no job yet. */
  get idle(): boolean {
    return this.exit === undefined && !this.taken;
  }

  /** Ends an interpreter that will get no job (its group, SIGKILL). */
  discard(): void {
    this.taken = true;
    this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      if (this.process.pid) process.kill(-this.process.pid, signal);
    } catch {
      // The group is gone.
    }
  }

  /** Gives the interpreter its run (once): the outcome, and a way to stop it. */
  run(job: PythonJob): RunningPython {
    if (this.taken) throw new Error('this interpreter has had its job');
    this.taken = true;
    // Before the job: whatever the script starts inherits the priority of its run.
    if (this.niced && this.process.pid) setNice(this.process.pid, 0);
    let final: PythonOutcome | undefined;
    let stopping: { reason: string } | undefined;
    let timedOut = false;
    let killed = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const terminate = () => {
      // Once the process has ended its group id may name another's.
      if (graceTimer || this.exit) return;
      this.signalGroup('SIGTERM');
      graceTimer = setTimeout(() => {
        killed = true;
        this.signalGroup('SIGKILL');
        this.sandbox.killFound();
      }, job.killGraceMs);
    };
    // Once the script's outcome has come (its result, its failure), the process only has to
    // exit: the timeout, a stop and the wait below still end it if it does not, but the
    // outcome stays what it sent. Whatever arrives on the channel never stops the process
    // from being ended: the channel is the script's to write.
    const timer = setTimeout(
      () => {
        if (stopping) return;
        if (!final) timedOut = true;
        terminate();
      },
      // Node fires a longer delay at once.
      Math.min(job.timeoutMs, maxTimerMs),
    );
    const stop = (reason: string) => {
      if (stopping || timedOut) return;
      if (!final) stopping = { reason };
      terminate();
    };
    let lingerTimer: NodeJS.Timeout | undefined;
    /** The outcome came: the process gets the grace period to exit by itself (threads left running hold it). */
    const settle = (outcome: PythonOutcome) => {
      final = outcome;
      // Read after the process ended (its last line was still in the pipe): nothing to wait for.
      if (!this.exit) lingerTimer ??= setTimeout(terminate, job.killGraceMs);
    };

    // The channel is the script's to write (its fd 3): anything may come, and nothing it sends
    // may throw here, in a stream handler of the runner's own process.
    this.onMessage = (line: string) => {
      if (line.trim() === '') return;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        message = undefined;
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        job.onLog('WARNING', `unreadable message from the runtime: ${line.slice(0, 200)}`);
        return;
      }
      const { t, l, m, v } = message as { t?: unknown; l?: unknown; m?: unknown; v?: unknown };
      switch (t) {
        case 'log': {
          const level = typeof l === 'string' && levels.has(l as ScriptLevel) ? (l as ScriptLevel) : 'INFO';
          job.onLog(level, textOf(m));
          return;
        }
        case 'progress':
          if (typeof v === 'number' && Number.isFinite(v)) job.onProgress(Math.min(100, Math.max(0, v)));
          return;
        case 'result': {
          if (final) return;
          const resultJson = resultJsonOf(v);
          settle(resultJson === undefined ? { kind: 'failed', message: `the script's result is nested deeper than ${maxJsonValueDepth} levels` } : { kind: 'result', resultJson });
          return;
        }
        case 'failed':
          if (!final) settle({ kind: 'failed', message: textOf(m) || 'the script failed' });
          return;
        case 'overflow':
          if (!final) settle({ kind: 'failed', message: `a message from the script exceeded ${maxMessageBytes} bytes` });
          job.onLog('ERROR', `The script's result is larger than ${maxMessageBytes} bytes`);
          return;
      }
    };
    for (const line of this.early.splice(0)) job.onLog(line.level, line.text);
    this.onOutput = job.onLog;
    this.backpressure = job.backpressure;

    const stdin: Writable = this.process.stdin;
    // As the shim applies them (setrlimit, soft = hard), as wrap() gives them to prlimit.
    const limits = this.sandbox.limitValues(job.limits);
    stdin.end(
      JSON.stringify({
        params: job.params,
        env: job.env,
        workdir: this.sandbox.dir,
        ...(limits ? { limits } : {}),
        ...(job.environment ? { environment: job.environment } : {}),
      }),
    );

    const streams = [this.channel, this.process.stdout, this.process.stderr];
    const outcome = this.exited.then(async ({ code, signal }) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      clearTimeout(lingerTimer);
      // Not started at all (the sandbox's tools are missing, say): this runner's trouble.
      if (this.spawnError) throw this.spawnError;
      // Output still held open by an escaped process (without a uid of its own) is cut off.
      await new Promise<void>((r) => {
        const cutoff = setTimeout(() => {
          for (const s of streams) s.destroy();
          r();
        }, 2000);
        void this.reading.then(() => {
          clearTimeout(cutoff);
          r();
        });
      });
      this.sandbox.killFound();
      await this.reading;
      if (timedOut) return { kind: 'timeout', killed } as const;
      if (stopping) return { kind: 'stopped', reason: stopping.reason, killed } as const;
      return final ?? ({ kind: 'exited', code, signal } as const);
    });
    return { outcome, stop };
  }
}
