import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The runner's directories. */
export interface RunnerDirs {
  /** The root (environments live in `<root>/environments`, as ensureEnvironment keeps them). */
  root: string;
  /** Downloaded archives by digest: the runner's alone (0700). */
  archives: string;
  /** Archives extracted once by digest, copied into each run's directory: the runner's alone (0700). */
  extracted: string;
  /** One directory per run, owned by its sandbox user (parent 0711: no listing). */
  work: string;
  /** The runtime shims, readable by the sandbox users. */
  runtime: string;
  /** Locks of the sandbox user ids in use (0700). */
  uids: string;
}

/** Whether every directory from `/` down to `dir` lets other users pass (o+x). */
export async function traversableByOthers(dir: string): Promise<boolean> {
  let current = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(current).catch(() => undefined);
    if (stat && (stat.mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/**
 * Chooses and creates the runner's directories. Sandboxed scripts must reach their
 * environment and working directory, so the root must be traversable by other users; the
 * data directory may not be (a private temporary directory, say), and opening it up would
 * expose what else it holds. Then the root is a directory of the runner's own under the
 * system's temporary directory, named after the data directory.
 */
export async function prepareRunnerDirs(options: { dataDir: string; configured?: string; sandboxed: boolean }): Promise<RunnerDirs> {
  let root = options.configured ? path.resolve(options.configured) : path.join(path.resolve(options.dataDir), 'runner');
  if (options.sandboxed && !options.configured && !(await traversableByOthers(path.dirname(root)))) {
    const key = createHash('sha256').update(path.resolve(options.dataDir)).digest('hex').slice(0, 12);
    root = path.join(os.tmpdir(), `gef-runner-${key}`);
  }
  const dirs: RunnerDirs = {
    root,
    archives: path.join(root, 'archives'),
    extracted: path.join(root, 'extracted'),
    work: path.join(root, 'work'),
    runtime: path.join(root, 'runtime'),
    uids: path.join(root, 'sandbox-uids'),
  };
  const modes: [string, number][] = [
    [dirs.root, 0o711],
    // Enterable, not listable: a script reaches its own environment by name, and cannot
    // list the others (whose requirements may name private packages or hold a URL's token).
    [path.join(root, 'environments'), 0o711],
    [dirs.archives, 0o700],
    [dirs.extracted, 0o700],
    [dirs.work, 0o711],
    [dirs.runtime, 0o755],
    [dirs.uids, 0o700],
  ];
  for (const [dir, mode] of modes) {
    await fs.mkdir(dir, { recursive: true, mode });
    await fs.chmod(dir, mode);
  }
  return dirs;
}

/** Installs the runtime shim where the sandbox users can read it; returns its path. */
export async function installShim(dirs: RunnerDirs, source: string): Promise<string> {
  const target = path.join(dirs.runtime, path.basename(source));
  const tmp = `${target}.${process.pid}.tmp`;
  await fs.copyFile(source, tmp);
  await fs.chmod(tmp, 0o644);
  await fs.rename(tmp, target);
  return target;
}
