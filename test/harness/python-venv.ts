/**
 * A Python tool from PyPI in a virtual environment of the tool cache (python-venv.sh: made
 * once, made again only when its pip arguments change).
 *
 * It runs without blocking the event loop: an install takes seconds, and a test file's
 * keep-alive connections to the gateway must see the gateway close them meanwhile. A loop
 * held through an install handed the next request to a connection already closed ("other
 * side closed"), which no client retries for a POST.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** Makes the virtual environment `<cache>/<name>-venv` if needed; resolves with its path. */
export function pythonVenv(name: string, pipArgs: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(__dirname, 'python-venv.sh'), name, ...pipArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out.trim().split('\n').pop()!);
      else reject(new Error(`python-venv.sh ${name} ended with ${signal ?? `code ${code}`}`));
    });
  });
}
