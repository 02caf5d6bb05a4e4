import { spawn } from 'node:child_process';
import readline from 'node:readline';

export interface StreamingRun {
  env: Record<string, string>;
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each line of stdout and stderr, as it comes. */
  onLine?: (line: string) => void;
  /** How many of the last lines to keep for the result. */
  keepLines?: number;
  /** Called once the program runs, with its pid (also its process group id). */
  onSpawn?: (pid: number) => void;
  /** Written to the program's stdin, which then ends (default: no stdin). */
  input?: Uint8Array;
}

export interface StreamingResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** The last lines of output, oldest first. */
  tail: string[];
}

 
const ansi = /\u001b\[[0-9;]*[A-Za-z]/g;

/**
 * Runs a program in its own process group, streaming its output line by line. A timeout
 * or an abort kills the whole group.
 */
export function runStreaming(command: string, args: string[], options: StreamingRun): Promise<StreamingResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    if (options.input && child.stdin) {
      // A program that ends without reading it all: its answer still counts.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }
    const tail: string[] = [];
    const keep = options.keepLines ?? 50;
    let timedOut = false;
    let aborted = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    const take = (line: string) => {
      const clean = line.replace(ansi, '').trimEnd();
      if (clean === '') return;
      tail.push(clean);
      if (tail.length > keep) tail.shift();
      options.onLine?.(clean);
    };
    const streams = [child.stdout!, child.stderr!].map((s) => {
      const rl = readline.createInterface({ input: s, crlfDelay: Infinity });
      rl.on('line', take);
      return new Promise<void>((r) => rl.once('close', () => r()));
    });

    child.once('error', (err) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      void Promise.all(streams).then(() => resolve({ code, signal, timedOut, aborted, tail }));
    });
  });
}
