import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * A failure the launcher explains in one line (what is wrong and what to do). Anything
 * thrown as a LaunchError is printed as its message alone, and the launcher exits 1.
 */
export class LaunchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LaunchError';
  }
}

/** A tool or resource the stack needs is missing (a JDK, Go, mvn, a free port...). */
export class PrerequisiteError extends LaunchError {
  constructor(message: string) {
    super(message);
    this.name = 'PrerequisiteError';
  }
}

/**
 * The last non-empty line a part wrote to its log (at most 300 characters), so the reason
 * a part failed is in the error itself even when its data directory is removed after.
 */
export function lastLogLine(logFile: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(logFile, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 4096);
    const tail = Buffer.alloc(length);
    readSync(fd, tail, 0, length, size - length);
    const line = tail.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
    return line?.slice(0, 300);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A child process ended while the launcher was starting it or waiting for it. */
export class PartExitedError extends LaunchError {
  constructor(
    readonly part: string,
    readonly logFile: string,
    readonly exit: { code: number | null; signal: NodeJS.Signals | null },
  ) {
    const how = exit.signal ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
    const last = lastLogLine(logFile);
    super(`${part} exited during start (${how})${last ? `: ${last}` : ''}; see ${logFile}`);
    this.name = 'PartExitedError';
  }
}

/** One line for any error: a LaunchError's message, else the error's first line. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n').find((line) => line.trim() !== '') ?? text).trim();
}
