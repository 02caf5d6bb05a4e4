import { readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { treeBytes } from '../caches/tree-bytes';
import { buildPythonEnvironment } from '../runtimes/python/build-python-environment';
import { environmentRecord, isEnvironmentReady, type EnvironmentCache } from './environment-cache';
import { EnvironmentError } from './environment-error';
import { environmentHash } from './environment-hash';
import { normaliseRequirements } from './requirements';
import { isAlive } from '../process/is-alive';
import { claimTree } from '../sandbox/claim-tree';
import type { Sandbox, SandboxLimits, SandboxRun } from '../sandbox/sandbox';

/** Where and how environments are made on this runner. */
export interface EnvironmentSettings {
  /** `<GEF_DATA_DIR>`: environments live in `environments/<hash>`. */
  dataDir: string;
  python: string;
  /** The environment of venv and pip. */
  processEnv: Record<string, string>;
  pipTimeoutMs: number;
  /**
   * Where builds run when the runner isolates: each build as an unprivileged user of its own
   * (pip runs the build code of the packages it installs, and requirements are the script
   * owner's to choose), with these limits. Without it, builds run as the runner.
   */
  /**
   * Builds as users of their own, with these limits; `disk`: what a build may put on disk
   * (the environment, its user's home and temporary files), checked every `checkMs`.
   */
  builds?: { sandbox: Sandbox; limits: SandboxLimits; disk?: { maxBytes: number; checkMs: number } };
  /**
   * The environments kept within a byte budget (least recently used removed first, never one
   * in use, one removed built again when needed). Without it, environments are kept for good.
   */
  cache?: EnvironmentCache;
}

export interface EnvironmentHooks {
  /** Progress and tool output, line by line. */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface Environment {
  hash: string;
  /** The environment's directory. */
  path: string;
  /** Its interpreter. */
  python: string;
  /** Whether it existed already (or another build made it meanwhile). */
  reused: boolean;
  /**
   * Says the environment is no longer used (a run: once its script's processes are gone; a
   * build: at once): from then on the cache may remove it. Once; later calls do nothing.
   */
  release(): void;
}

const marker = environmentRecord;
/**
 * Beside a half-built environment (`<dir>.pgid`, in the runner's own directory, never in the
 * tree a build's user writes to): the process group of the step running (venv, pip).
 */
const buildProcessFile = (dir: string) => `${dir}.pgid`;
const supported = new Set(['python3']);

/**
 * A build in progress, shared by every request for its hash: it has a signal of its own,
 * aborted only once every request waiting for it has been cancelled. One run's cancel
 * stops its own wait, not the build another run (of another user, maybe) waits for.
 */
interface SharedBuild {
  done: Promise<Environment>;
  abort: AbortController;
  waiting: number;
}

/** Builds in progress in this process, by hash: a second request for a hash waits for the first's build. */
const inFlight = new Map<string, SharedBuild>();

/** The build of `hash` under way that a request may still join: not one being stopped. */
function sharedBuildOf(hash: string): SharedBuild | undefined {
  const shared = inFlight.get(hash);
  return shared && !shared.abort.signal.aborted ? shared : undefined;
}

/** Starts the build of `hash` (`start`, given the build's own signal), shared from now on. */
function shareBuild(hash: string, start: (signal: AbortSignal) => Promise<Environment>): SharedBuild {
  const abort = new AbortController();
  const shared: SharedBuild = { abort, waiting: 0, done: Promise.resolve(undefined as never) };
  shared.done = start(abort.signal).finally(() => {
    if (inFlight.get(hash) === shared) inFlight.delete(hash);
  });
  inFlight.set(hash, shared);
  return shared;
}

/**
 * Waits for a shared build until it ends or `signal` aborts: then this wait ends as a
 * cancelled build would have (retryable), and the build is stopped if nobody else waits.
 */
function waitFor(shared: SharedBuild, signal: AbortSignal | undefined): Promise<Environment> {
  shared.waiting++;
  return new Promise<Environment>((resolve, reject) => {
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      signal?.removeEventListener('abort', onAbort);
      shared.waiting--;
    };
    function onAbort(): void {
      if (left) return;
      leave();
      if (shared.waiting === 0) shared.abort.abort();
      reject(new EnvironmentError('the build was cancelled', true));
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    shared.done.then(
      (env) => {
        leave();
        resolve(env);
      },
      (err: unknown) => {
        leave();
        reject(err);
      },
    );
  });
}
/**
 * Environments this process has seen complete, by directory. They are immutable (a
 * directory named by its hash is only ever complete), so each is checked on disk once.
 */
const known = new Set<string>();

/** A build stopped for its disk use: not retried (it would do the same again). */
const overQuota = (maxBytes: number, bytes: number) =>
  new EnvironmentError(`the build put more than its disk quota of ${Math.round(maxBytes / 1024 ** 2)} MiB on disk (${Math.round(bytes / 1024 ** 2)} MiB)`, false);

const environmentsDir = (settings: EnvironmentSettings) => path.join(path.resolve(settings.dataDir), 'environments');

const isReady = isEnvironmentReady;

function describe(hash: string, dir: string, reused: boolean, release: () => void = () => undefined): Environment {
  return { hash, path: dir, python: path.join(dir, 'bin', 'python'), reused, release };
}

async function build(settings: EnvironmentSettings, runtime: string, requirements: string[], hash: string, hooks: EnvironmentHooks): Promise<Environment> {
  const onLine = hooks.onLine ?? (() => undefined);
  const root = environmentsDir(settings);
  const final = path.join(root, hash);
  await fs.mkdir(root, { recursive: true });
  // Built beside its final place and renamed in one step: a directory named by its hash
  // is always complete. Another runner process racing on the same hash loses the rename
  // and uses the winner's.
  const tmp = await fs.mkdtemp(path.join(root, `.tmp-${hash.slice(0, 12)}-${process.pid}-`));
  let builder: SandboxRun | undefined;
  try {
    builder = settings.builds?.sandbox.isolated ? await settings.builds.sandbox.open(`build-${hash.slice(0, 12)}`) : undefined;
    const buildUid = builder?.uid;
    if (buildUid !== undefined) await fs.chown(tmp, buildUid, buildUid);
    const place = builder;
    const limits = settings.builds?.limits;
    // A build's disk use: pip runs the build code of what is required, which may write
    // anything anywhere its user may. Past the quota the build is stopped and fails for good.
    const disk = place ? settings.builds?.disk : undefined;
    const quota = new AbortController();
    let diskExceeded: number | undefined;
    let measuring = false;
    const watch =
      disk &&
      setInterval(() => {
        if (measuring || diskExceeded !== undefined) return;
        measuring = true;
        void Promise.all([treeBytes(tmp).catch(() => 0), place!.diskUsage()])
          .then(([environment, home]) => {
            const bytes = environment + home.bytes;
            if (bytes <= disk.maxBytes && home.complete) return;
            diskExceeded = bytes;
            quota.abort();
          })
          .finally(() => (measuring = false));
      }, disk.checkMs);
    const signal = hooks.signal ? AbortSignal.any([hooks.signal, quota.signal]) : quota.signal;
    try {
      await buildPythonEnvironment(tmp, requirements, {
        python: settings.python,
        // The build's user has its own home (removed with it) and no cache shared with other builds.
        env: place ? { ...settings.processEnv, HOME: place.dir, TMPDIR: place.dir } : settings.processEnv,
        pipTimeoutMs: settings.pipTimeoutMs,
        ...(place && limits
          ? { wrap: (command: string, args: string[]) => place.wrap(command, args, limits), requirementsFile: path.join(place.dir, 'gef-requirements.txt') }
          : { pipCacheDir: path.join(path.resolve(settings.dataDir), 'cache', 'pip') }),
        onLine,
        // Written at once, so a runner started after this one is killed can stop what it left running.
        onProcess: (pgid) => writeFileSync(buildProcessFile(tmp), `${pgid}\n`),
        signal,
      });
    } catch (err) {
      if (diskExceeded !== undefined) throw overQuota(disk!.maxBytes, diskExceeded);
      throw err;
    } finally {
      clearInterval(watch);
    }
    if (diskExceeded !== undefined) throw overQuota(disk!.maxBytes, diskExceeded);
    await fs.rm(buildProcessFile(tmp), { force: true });
    if (place && buildUid !== undefined) {
      // Nothing the build started may change the environment once it is the runner's.
      await place.killAll();
      await claimTree(tmp, buildUid);
    } else {
      // The requirements may hold credentials (a URL with a token): the runner's alone.
      await fs.chmod(path.join(tmp, 'gef-requirements.txt'), 0o600).catch(() => undefined);
    }
    // The runner's record of the environment, never through whatever the build left at its
    // name (a link the runner would follow as root, a FIFO it would block on): that is
    // removed, and the record made anew.
    await fs.rm(path.join(tmp, marker), { recursive: true, force: true });
    // What it takes on disk, measured once (the cache's budget counts it).
    const bytes = settings.cache ? await treeBytes(tmp) : undefined;
    await fs.writeFile(path.join(tmp, marker), `${JSON.stringify({ hash, runtime, requirements, createdAt: new Date().toISOString(), ...(bytes !== undefined ? { bytes } : {}) }, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    // Readable by the unprivileged users scripts run as.
    await fs.chmod(tmp, 0o755);
    try {
      await fs.rename(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isReady(final))) {
        await fs.rm(tmp, { recursive: true, force: true });
        onLine(`environment ${hash.slice(0, 12)} was finished by another build meanwhile; using it`);
        return describe(hash, final, true);
      }
      throw err;
    }
    if (bytes !== undefined) settings.cache?.added(hash, bytes);
    return describe(hash, final, false);
  } catch (err) {
    await builder?.killAll();
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.rm(buildProcessFile(tmp), { force: true });
    throw err;
  } finally {
    await builder?.close();
  }
}

/**
 * The environment of a runtime and its requirements on this runner, made when missing.
 * Environments are a cache keyed by the hash of runtime + normalised requirements: a
 * runner that lacks one builds it by the same steps, so runners need no shared disk.
 * Two requests for the same hash at once build it once. Throws EnvironmentError.
 */
export async function ensureEnvironment(
  settings: EnvironmentSettings,
  runtime: string,
  requirements: string,
  hooks: EnvironmentHooks = {},
): Promise<Environment> {
  if (!supported.has(runtime)) throw new EnvironmentError(`unsupported runtime '${runtime}'`, false);
  const normalised = normaliseRequirements(requirements);
  const hash = environmentHash(runtime, normalised);
  if (settings.cache) return ensureCached(settings, settings.cache, runtime, normalised, hash, hooks);
  const dir = path.join(environmentsDir(settings), hash);
  if (known.has(dir) || (await isReady(dir))) {
    known.add(dir);
    hooks.onLine?.(`environment ${hash.slice(0, 12)} exists; reusing it`);
    return describe(hash, dir, true);
  }
  const running = sharedBuildOf(hash);
  if (running) {
    hooks.onLine?.(`environment ${hash.slice(0, 12)} is being prepared by another build; waiting for it`);
    return { ...(await waitFor(running, hooks.signal)), reused: true };
  }
  hooks.onLine?.(`preparing environment ${hash.slice(0, 12)} (${normalised.length} requirement${normalised.length === 1 ? '' : 's'})`);
  const building = shareBuild(hash, (signal) =>
    build(settings, runtime, normalised, hash, { ...hooks, signal }).then((env) => {
      known.add(env.path);
      return env;
    }),
  );
  return waitFor(building, hooks.signal);
}

/**
 * ensureEnvironment with a cache: each use is marked (see EnvironmentCache) and checked
 * complete under the hash's lock, so an environment the cache removed meanwhile is built
 * again rather than used half gone.
 */
async function ensureCached(settings: EnvironmentSettings, cache: EnvironmentCache, runtime: string, normalised: string[], hash: string, hooks: EnvironmentHooks): Promise<Environment> {
  const dir = path.join(environmentsDir(settings), hash);
  let built = false;
  let waited = false;
  // A few rounds at most: each ends with the environment in place, unless it is removed again at once.
  for (let round = 0; round < 3; round++) {
    const use = await cache.use(hash);
    if (use) {
      if (!built && !waited) hooks.onLine?.(`environment ${hash.slice(0, 12)} exists; reusing it`);
      return describe(hash, dir, !built, use.release);
    }
    const running = sharedBuildOf(hash);
    if (running) {
      hooks.onLine?.(`environment ${hash.slice(0, 12)} is being prepared by another build; waiting for it`);
      waited = true;
      await waitFor(running, hooks.signal);
      continue;
    }
    hooks.onLine?.(`preparing environment ${hash.slice(0, 12)} (${normalised.length} requirement${normalised.length === 1 ? '' : 's'})`);
    const building = shareBuild(hash, (signal) => build(settings, runtime, normalised, hash, { ...hooks, signal }));
    built = !(await waitFor(building, hooks.signal)).reused;
  }
  throw new EnvironmentError(`environment ${hash.slice(0, 12)} was removed as soon as it was prepared`, true);
}

/**
 * Stops the step (venv or pip, with its children) a killed runner left running in a
 * half-built environment: its process group, when the group's leader is still that step
 * (its command line names the directory). Linux; elsewhere nothing is stopped.
 */
function stopLeftoverBuild(dir: string): boolean {
  let pgid: number;
  let cmdline: string;
  try {
    pgid = Number(readFileSync(buildProcessFile(dir), 'utf8').trim());
    if (!Number.isInteger(pgid) || pgid <= 1) return false;
    cmdline = readFileSync(`/proc/${pgid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  if (!cmdline.includes(dir)) return false;
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes half-built environments left by a runner killed mid-build: those of a process
 * that is gone (stopping the venv or pip it left running first), and any older than
 * `maxAgeMs`.
 */
export async function sweepUnfinishedEnvironments(settings: EnvironmentSettings, maxAgeMs: number): Promise<number> {
  const root = environmentsDir(settings);
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names.filter((n) => n.startsWith('.tmp-') && !n.endsWith('.pgid'))) {
    const dir = path.join(root, name);
    const owner = Number(/^\.tmp-[0-9a-f]+-(\d+)-/.exec(name)?.[1]);
    const orphaned = Number.isInteger(owner) && owner !== process.pid && !isAlive(owner);
    const stat = await fs.stat(dir).catch(() => undefined);
    if (stat && (orphaned || Date.now() - stat.mtimeMs > maxAgeMs)) {
      if (owner !== process.pid) stopLeftoverBuild(dir);
      await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
      await fs.rm(buildProcessFile(dir), { force: true });
      removed++;
    }
  }
  // A process group's record whose half-built environment is gone.
  for (const name of names.filter((n) => n.startsWith('.tmp-') && n.endsWith('.pgid'))) {
    const dir = path.join(root, name.slice(0, -'.pgid'.length));
    if (!names.includes(path.basename(dir))) await fs.rm(path.join(root, name), { force: true });
  }
  return removed;
}

/**
 * Makes the records of environments built before they were private (the requirements file
 * and the marker, which may hold a URL's token) the runner's alone: regular files of root's
 * only, never through a link. Returns how many were changed.
 */
export async function privatiseEnvironmentRecords(settings: EnvironmentSettings): Promise<number> {
  const root = environmentsDir(settings);
  let changed = 0;
  for (const name of await fs.readdir(root).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    for (const record of [marker, 'gef-requirements.txt']) {
      const file = path.join(root, name, record);
      const stat = await fs.lstat(file).catch(() => undefined);
      if (!stat?.isFile() || stat.uid !== 0 || (stat.mode & 0o077) === 0) continue;
      await fs.chmod(file, 0o600);
      changed++;
    }
  }
  return changed;
}
