import type { Logger } from '@gef/common';
import type { Sandbox, SandboxLimits } from '../../sandbox/sandbox';
import type { ForkServer } from './fork-server';
import { limitsFit, PythonInterpreter } from './run-python';

export interface InterpreterPoolOptions {
  sandbox: Sandbox;
  /** The interpreter environments are made from. */
  python: string;
  /** The runtime shim (gef_runtime.py). */
  shim: string;
  /** Interpreters kept waiting. 0: none (every run starts its own). */
  size: number;
  /** Their limits at start; a run whose limits do not fit under them starts its own. */
  limits: SandboxLimits;
  /** Their environment until a job replaces it: PATH and the locale, nothing of the runner's. */
  env: Record<string, string>;
  /** Forks the interpreters (see ForkServer); without it each is spawned. */
  forkServer?: ForkServer;
  logger: Logger;
}

/** Longest wait before starting again after interpreters died before they were ready. */
const maxBackoffMs = 30_000;

/**
 * Python interpreters started ahead of their runs, so a run does not wait for one to start
 * and import the shim. Each is started exactly as a run's own would be — in a sandbox run
 * of its own (an unprivileged uid, its own directory, prlimit, a scrubbed environment), the
 * shim imported — and waits for one job, which lowers the limits to the run's and sets its
 * environment before any of the script's code runs; after that run it is gone with its uid
 * and directory, like any run's. Taken ones are replaced in the background; one that dies
 * while it waits is replaced too.
 */
export class InterpreterPool {
  private readonly idle: PythonInterpreter[] = [];
  private starting = 0;
  private stopped = false;
  private failures = 0;
  private refillTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: InterpreterPoolOptions) {}

  /** Interpreters waiting or being started. */
  get size(): number {
    return this.idle.length + this.starting;
  }

  /** Fills the pool (in the background). */
  start(): void {
    this.refill();
  }

  /**
   * A waiting interpreter for a run with these limits (ready ones first, else one still
   * starting: it is ready sooner than a new one), or undefined: the run starts its own.
   */
  take(limits: SandboxLimits): PythonInterpreter | undefined {
    if (this.stopped || !limitsFit(limits, this.options.limits)) return undefined;
    let index = -1;
    for (let i = 0; i < this.idle.length; i++) {
      const candidate = this.idle[i]!;
      if (!candidate.idle) continue;
      if (index === -1) index = i;
      if (candidate.isReady) {
        index = i;
        break;
      }
    }
    if (index === -1) return undefined;
    const [taken] = this.idle.splice(index, 1);
    this.refill();
    return taken;
  }

  /** Ends every waiting interpreter and its sandbox run; nothing is started after. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.refillTimer);
    const waiting = this.idle.splice(0);
    await Promise.all(
      waiting.map(async (interpreter) => {
        interpreter.discard();
        await interpreter.exited;
        await interpreter.sandbox.close().catch(() => undefined);
      }),
    );
  }

  private refill(): void {
    if (this.stopped || this.refillTimer) return;
    while (this.size < this.options.size) {
      this.starting++;
      void this.startOne();
    }
  }

  private async startOne(): Promise<void> {
    const { sandbox, python, shim, limits, env, forkServer, logger } = this.options;
    let interpreter: PythonInterpreter;
    try {
      const run = await sandbox.open('pool');
      if (this.stopped) {
        this.starting--;
        await run.close();
        return;
      }
      interpreter = await PythonInterpreter.start({ sandbox: run, python, shim, limits, env: { ...env, HOME: run.dir }, background: true, ...(forkServer ? { forkServer } : {}) });
      if (this.stopped) {
        this.starting--;
        interpreter.discard();
        await interpreter.exited;
        await run.close();
        return;
      }
    } catch (err) {
      this.starting--;
      this.failed(err);
      return;
    }
    this.starting--;
    this.idle.push(interpreter);
    void interpreter.ready.then((ready) => {
      if (ready) this.failures = 0;
    });
    void interpreter.exited.then(async ({ code, signal }) => {
      const at = this.idle.indexOf(interpreter);
      if (at === -1) return; // taken: its run closes it
      this.idle.splice(at, 1);
      await interpreter.sandbox.close().catch((err: unknown) => logger.warn({ err: String(err) }, 'pooled interpreter cleanup failed'));
      if (this.stopped) return;
      logger.warn({ code, signal }, 'a waiting Python interpreter ended; starting another');
      if (!interpreter.isReady) this.failed(new Error(`the interpreter ended before it was ready (${signal ?? `exit code ${code}`})`));
      else this.refill();
    });
  }

  /** Starting failed: try again later, waiting longer each time. */
  private failed(err: unknown): void {
    this.failures++;
    const delay = Math.min(maxBackoffMs, 250 * 2 ** Math.min(this.failures, 8));
    this.options.logger.warn({ err: String(err), retryInMs: delay }, 'could not start a Python interpreter for the pool');
    if (this.stopped || this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      this.refill();
    }, delay);
  }
}
