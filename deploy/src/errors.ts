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

/** A child process ended while the launcher was starting it or waiting for it. */
export class PartExitedError extends LaunchError {
  constructor(
    readonly part: string,
    readonly logFile: string,
    readonly exit: { code: number | null; signal: NodeJS.Signals | null },
  ) {
    const how = exit.signal ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
    super(`${part} exited during start (${how}); see ${logFile}`);
    this.name = 'PartExitedError';
  }
}

/** One line for any error: a LaunchError's message, else the error's first line. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n').find((line) => line.trim() !== '') ?? text).trim();
}
