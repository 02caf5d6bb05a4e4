/**
 * A Python tool from PyPI in a virtual environment of the tool cache (python-venv.sh: made
 * once, made again only when its pip arguments change).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Makes the virtual environment `<cache>/<name>-venv` if needed; returns its path. */
export function pythonVenv(name: string, pipArgs: string[]): string {
  const out = execFileSync('bash', [join(__dirname, 'python-venv.sh'), name, ...pipArgs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop()!;
}
