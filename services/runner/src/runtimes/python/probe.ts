import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The version of a Python interpreter, e.g. `3.11.7`; undefined when it does not run. */
export async function pythonVersion(python: string): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(python, ['--version'], { timeout: 5000 });
    const match = /Python\s+(\S+)/.exec(stdout || stderr);
    return match?.[1];
  } catch {
    return undefined;
  }
}
