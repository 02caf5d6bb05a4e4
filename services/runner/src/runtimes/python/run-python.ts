import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { SandboxLimits, SandboxRun } from '../../sandbox/sandbox';

export type ScriptLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

export interface PythonRun {
  sandbox: SandboxRun;
  /** The environment's interpreter. */
  python: string;
  /** The runtime shim (gef_runtime.py). */
  shim: string;
  params: Record<string, unknown>;
  /** The script's whole environment (nothing else of the runner's reaches it). */
  env: Record<string, string>;
  limits: SandboxLimits;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  onLog: (level: ScriptLevel, text: string) => void;
  onProgress: (percent: number) => void;
}

export type PythonOutcome =
  | { kind: 'result'; resultJson: string }
  | { kind: 'failed'; message: string }
  /** The process ended without saying how (killed by a limit, os._exit, a crash). */
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null }
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

const levels = new Set<ScriptLevel>(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']);

/** Splits a stream into lines, at most `max` bytes each (the rest of a longer line is `overflow`). */
function readLines(stream: Readable, max: number, onLine: (line: string) => void, onOverflow: () => void): Promise<void> {
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
        if (pending.length > 0 || !skipping) onLine(Buffer.concat(pending).toString('utf8'));
        pending = [];
        size = 0;
        skipping = false;
        start = nl + 1;
      }
    });
    stream.once('close', () => {
      if (size > 0) onLine(Buffer.concat(pending).toString('utf8'));
      resolve();
    });
    stream.once('error', () => resolve());
  });
}

/**
 * Runs the shim in the sandbox: params on stdin, messages on fd 3, the script's raw stdout
 * and stderr (subprocesses, C code) as log lines too. The process group is killed when
 * the main process exits (nothing a script leaves behind lives on), at the wall-clock
 * timeout and on stop(); the sandbox kills whatever escaped the group.
 */
export function runPython(run: PythonRun): RunningPython {
  const { command, args } = run.sandbox.wrap(run.python, ['-I', '-u', '-B', '-X', 'utf8', run.shim], run.limits);
  const child = spawn(command, args, { cwd: run.sandbox.dir, env: run.env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: true });

  let final: PythonOutcome | undefined;
  let stopping: { reason: string } | undefined;
  let timedOut = false;
  let killed = false;
  let graceTimer: NodeJS.Timeout | undefined;

  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // The group is gone.
    }
  };
  const terminate = () => {
    if (graceTimer) return;
    signalGroup('SIGTERM');
    graceTimer = setTimeout(() => {
      killed = true;
      signalGroup('SIGKILL');
      run.sandbox.killFound();
    }, run.killGraceMs);
  };
  const timer = setTimeout(() => {
    if (stopping || final) return;
    timedOut = true;
    terminate();
  }, run.timeoutMs);
  const stop = (reason: string) => {
    if (stopping || timedOut || final) return;
    stopping = { reason };
    terminate();
  };

  const onMessage = (line: string) => {
    if (line.trim() === '') return;
    let message: { t?: unknown; l?: unknown; m?: unknown; v?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      run.onLog('WARNING', `unreadable message from the runtime: ${line.slice(0, 200)}`);
      return;
    }
    switch (message.t) {
      case 'log': {
        const level = typeof message.l === 'string' && levels.has(message.l as ScriptLevel) ? (message.l as ScriptLevel) : 'INFO';
        run.onLog(level, String(message.m ?? ''));
        return;
      }
      case 'progress':
        if (typeof message.v === 'number' && Number.isFinite(message.v)) run.onProgress(Math.min(100, Math.max(0, message.v)));
        return;
      case 'result':
        final ??= { kind: 'result', resultJson: JSON.stringify(message.v ?? null) };
        return;
      case 'failed':
        final ??= { kind: 'failed', message: String(message.m ?? 'the script failed') };
        return;
    }
  };

  const channel = child.stdio[3] as Readable;
  const reading = Promise.all([
    readLines(channel, maxMessageBytes, onMessage, () => {
      final ??= { kind: 'failed', message: `a message from the script exceeded ${maxMessageBytes} bytes` };
      run.onLog('ERROR', `The script's result is larger than ${maxMessageBytes} bytes`);
    }),
    readLines(child.stdout, maxOutputLine, (l) => l.trim() && run.onLog('INFO', l.trimEnd()), () => undefined),
    readLines(child.stderr, maxOutputLine, (l) => l.trim() && run.onLog('WARNING', l.trimEnd()), () => undefined),
  ]);

  child.stdin.on('error', () => undefined);
  child.stdin.end(JSON.stringify({ params: run.params }));

  const outcome = new Promise<PythonOutcome>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      // Nothing the script started outlives it.
      signalGroup('SIGKILL');
      // Output still held open by an escaped process (without a uid of its own) is cut off.
      const drained = new Promise<void>((r) => {
        const cutoff = setTimeout(() => {
          for (const s of [channel, child.stdout, child.stderr]) s.destroy();
          r();
        }, 2000);
        void reading.then(() => {
          clearTimeout(cutoff);
          r();
        });
      });
      run.sandbox.killFound();
      void drained
        .then(() => reading)
        .then(() => {
          if (timedOut) resolve({ kind: 'timeout', killed });
          else if (stopping) resolve({ kind: 'stopped', reason: stopping.reason, killed });
          else resolve(final ?? { kind: 'exited', code, signal });
        });
    });
  });
  return { outcome, stop };
}
