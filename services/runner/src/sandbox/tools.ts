import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Whether a util-linux sandbox tool (setpriv, prlimit) runs on this machine. */
export async function hasTool(name: 'setpriv' | 'prlimit'): Promise<boolean> {
  try {
    await run(name, ['--version'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}
