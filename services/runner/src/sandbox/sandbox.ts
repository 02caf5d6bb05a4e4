import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsSync, { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ForkRequest } from '../runtimes/python/fork-server';
import { openRunGroup, type MemoryCgroups, type RunGroup } from './memory-cgroups';
import { copyTree, readTree, type TreeManifest } from './tree-copy';
import type { RunnerDirs } from './runner-dirs';
import { isAlive } from '../process/is-alive';
import { enterGroupsScript, enterPrivateProcScript, type PrivateProcTools } from './private-proc';
import { removeSysvIpcOf } from './sysv-ipc';

/**
 * The most files and directories a run may have (its directory and its files in the shared
 * temporary directories): more are not counted, and the run is stopped as over its disk
 * quota. Empty files take no blocks, but each takes an inode the machine's other runs need.
 */
export const maxRunEntries = 200_000;

/** Resource limits of one run (setrlimit through prlimit). */
export interface SandboxLimits {
  /** Address space (RLIMIT_AS), bytes. */
  memoryBytes: number;
  /** CPU time (RLIMIT_CPU), seconds. */
  cpuSeconds: number;
  /** Processes of the sandbox user (RLIMIT_NPROC); ignored without a user of its own. */
  processes: number;
  /** Open files (RLIMIT_NOFILE). */
  openFiles: number;
  /** Largest file written (RLIMIT_FSIZE), bytes. */
  fileBytes: number;
}

export interface SandboxSettings {
  /** `on`: each run as an unprivileged uid/gid of its own (needs root); `off`: as the runner. */
  mode: 'on' | 'off';
  uidBase: number;
  uidCount: number;
  dirs: RunnerDirs;
  /** prlimit is there (util-linux). */
  prlimit: boolean;
  /** setpriv is there: also used for the parent-death signal when not isolated. */
  setpriv?: boolean;
  /** Memory cgroups: one memory limit for all the processes of a run (see memory-cgroups.ts). */
  memoryGroups?: MemoryCgroups;
  /** Each run of a user of its own sees only that user's processes in /proc (private-proc.ts): the tools for it. */
  privateProc?: PrivateProcTools;
}

/** Trees whose entries are kept (a few hundred bytes to a few hundred KiB each). */
const maxManifests = 256;

/** World-writable directories where a run's user may leave files behind (and POSIX message queues). */
const sharedTempDirs = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock', '/dev/mqueue'];

/**
 * What a uid has in the shared temporary directories: each entry it owns at the top of one
 * (every entry looked at), or in a directory below that root owns, others may write to and
 * is sticky (`/tmp/.X11-unix`), however deep such directories nest; at most
 * `maxNestedEntries` entries inside them are looked at. Nothing else is entered: the path
 * to an entry found is made only of directories no sandbox user can rename or replace (a
 * directory of another run's user could be swapped for a link meanwhile), and another run's
 * directories go with that run.
 */
export function leftoversOf(uid: number, maxNestedEntries = 100_000, roots: readonly string[] = sharedTempDirs): string[] {
  const found: string[] = [];
  let nested = 0;
  const enterable = (stat: fsSync.Stats) => stat.isDirectory() && stat.uid === 0 && (stat.mode & 0o1002) === 0o1002;
  // Synchronous calls: a run's end reads every entry at the top of /tmp, and one awaited
  // call per entry cost ten times the CPU (about 40 ms against 4 ms for 680 entries).
  const visit = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = fsSync.readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (depth > 0 && nested++ >= maxNestedEntries) return;
      const full = path.join(dir, name);
      let stat: fsSync.Stats;
      try {
        stat = fsSync.lstatSync(full);
      } catch {
        continue;
      }
      if (stat.uid === uid) found.push(full);
      else if (enterable(stat) && depth < 16) visit(full, depth + 1);
    }
  };
  for (const root of roots) visit(root, 0);
  return found;
}

/**
 * Removes paths with GNU `rm -rf`, which walks each tree relative to its directories
 * without following links (a directory swapped for a link meanwhile is not followed), and
 * removes what its owner made unreadable or deeper than PATH_MAX. Resolves to whether it
 * removed them all.
 */
function removeWithRm(paths: string[]): Promise<boolean> {
  if (paths.length === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const child = spawn('rm', ['-rf', '--one-file-system', '--', ...paths], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    child.once('error', () => resolve(false));
    child.once('close', (code) => resolve(code === 0));
  });
}

/**
 * What a sandboxed command starts with, as root before the uid is dropped: the process
 * enters the run's groups ($0: their cgroup.procs joined by ':', or /dev/null) and files it creates
 * are its user's alone (umask 077: another run's user cannot read what it leaves in /tmp).
 * The shell's own PWD is not passed on: the command's environment is exactly the one given.
 */
const enterScript = `${enterGroupsScript} && umask 077 && unset PWD && exec "$@"`;

/**
 * Live processes whose effective uid is `uid`, from the owners of /proc/<pid> (a fast scan;
 * a process that made itself non-dumpable shows as root and is missed: killUser covers it).
 */
export function processesOf(uid: number): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fsSync.readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) > 57) continue;
    try {
      if (fsSync.statSync(`/proc/${e}`).uid !== uid) continue;
      // A zombie is dead already (reaping it is its parent's business, init's for escapees).
      const stat = fsSync.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') pids.push(Number(e));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** SIGKILL to the processes the fast scan finds. */
export function killFound(uid: number): void {
  for (const pid of processesOf(uid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Makes a uid's lock naming this process, whole or not at all (the pid written to a file of
 * its own, linked to the lock's name): no runner ever reads a lock half made. False when
 * the uid is locked already.
 */
async function createLock(lock: string): Promise<boolean> {
  const made = `${lock}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  await fs.writeFile(made, String(process.pid), { mode: 0o600 });
  try {
    await fs.link(made, lock);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(made, { force: true });
  }
}

/**
 * Removes the lock a dead runner left, `stale` as it was read: moved aside (of runners taking
 * it over at once, one moves it) and checked to be that one. A lock made since, by a runner
 * that took the uid first, is put back. True when this call removed the stale lock.
 */
async function removeStaleLock(lock: string, stale: string): Promise<boolean> {
  const aside = `${lock}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(lock, aside);
  } catch {
    return false;
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== stale) await fs.link(aside, lock).catch(() => undefined);
  await fs.rm(aside, { force: true });
  return moved === stale;
}

/** `kill -9 -1` as the uid: every process of that user (but the killer), in any group or session. */
function killAsUser(uid: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'kill', '-9', '-1'], {
      stdio: 'ignore',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    });
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
}

/**
 * Kills every process of a uid, whatever its process group or session (also one that made
 * itself invisible to the fast scan): SIGKILL to what the scan finds, then kill(-1) as that
 * user, twice (a process forked while the first went round is caught by the second).
 */
export async function killUser(uid: number): Promise<void> {
  killFound(uid);
  await killAsUser(uid);
  await killAsUser(uid);
  killFound(uid);
  // Before the uid is used again, its processes are gone (reaped), for at most a second.
  for (let i = 0; i < 100 && processesOf(uid).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Where and as whom scripts run. With mode `on` each run gets a uid/gid of its own from a
 * range (taken with a lock file, so runner processes on one machine never share one), its
 * own working directory (0700, owned by that user), limits through prlimit, and no new
 * privileges; when it ends every process of that user is killed and its files in the
 * shared temporary directories removed, so the next run with that uid finds nothing.
 */
export class Sandbox {
  private readonly taken = new Set<number>();
  /** Runs' closes under way (some are not waited for by their run: see settled()). */
  private readonly closing = new Set<Promise<void>>();
  /** What extracted trees hold (they never change: a digest names each), the latest used last. */
  private readonly manifests = new Map<string, Promise<TreeManifest>>();

  constructor(readonly settings: SandboxSettings) {}

  get isolated(): boolean {
    return this.settings.mode === 'on';
  }

  /** Resolves once every run's close under way has ended (a stopping runner waits for them). */
  async settled(): Promise<void> {
    while (this.closing.size > 0) await Promise.allSettled([...this.closing]);
  }

  /** Counts a run's close as under way until it ends. */
  track(close: Promise<void>): Promise<void> {
    this.closing.add(close);
    void close.then(
      () => this.closing.delete(close),
      () => this.closing.delete(close),
    );
    return close;
  }

  /** A fresh run directory (and uid), named after the run. */
  async open(label: string): Promise<SandboxRun> {
    const uid = this.isolated ? await this.takeUid() : undefined;
    try {
      const dir = this.runDir(label);
      await fs.mkdir(dir, { mode: 0o700 });
      if (uid !== undefined) await fs.chown(dir, uid, uid);
      const { memoryGroups } = this.settings;
      const group = memoryGroups ? await openRunGroup(memoryGroups, uid !== undefined ? `uid-${uid}` : path.basename(dir)) : undefined;
      return new SandboxRun(this, dir, uid, group);
    } catch (err) {
      if (uid !== undefined) await this.releaseUid(uid);
      throw err;
    }
  }

  /** The entries of an extracted tree, read once. */
  manifest(tree: string): Promise<TreeManifest> {
    let known = this.manifests.get(tree);
    if (known) this.manifests.delete(tree);
    else known = readTree(tree);
    this.manifests.set(tree, known);
    known.catch(() => this.manifests.delete(tree));
    if (this.manifests.size > maxManifests) this.manifests.delete(this.manifests.keys().next().value!);
    return known;
  }

  /** Forgets what a tree held (it was removed; one made again at its path is read anew). */
  forgetManifest(tree: string): void {
    this.manifests.delete(tree);
  }

  /** A new run directory's path, named after the run. */
  runDir(label: string): string {
    const safe = label.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
    return path.join(this.settings.dirs.work, `${safe}-${randomBytes(6).toString('hex')}`);
  }

  private async takeUid(): Promise<number> {
    const { uidBase, uidCount, dirs } = this.settings;
    const start = Math.floor(Math.random() * uidCount);
    for (let i = 0; i < uidCount; i++) {
      const uid = uidBase + ((start + i) % uidCount);
      if (this.taken.has(uid)) continue;
      // Reserved before anything is awaited: two runs starting at once never try one uid.
      this.taken.add(uid);
      let took = false;
      try {
        took = await this.lockUid(uid, path.join(dirs.uids, String(uid)));
      } finally {
        if (!took) this.taken.delete(uid);
      }
      if (took) return uid;
    }
    throw new Error(`all ${uidCount} sandbox user ids are in use`);
  }

  /** Takes a uid's lock file: a free one, or one a dead runner left (what its run left is removed first). */
  private async lockUid(uid: number, lock: string): Promise<boolean> {
    if (await createLock(lock)) return true;
    const stale = await fs.readFile(lock, 'utf8').catch(() => undefined);
    // Gone meanwhile (its run ended): another uid is taken rather than race for this one.
    // Empty: no lock is made so (createLock), so one an older runner is still writing.
    if (stale === undefined || stale === '') return false;
    const owner = Number(stale);
    if (Number.isInteger(owner) && owner > 0 && (owner === process.pid || isAlive(owner))) return false;
    // Left by a runner that died; another runner of this machine may be taking it over too.
    if (!(await removeStaleLock(lock, stale)) || !(await createLock(lock))) return false;
    await killUser(uid);
    await removeLeftoversOf(uid);
    return true;
  }

  /**
   * After a runner on this machine died: what its runs left (processes, temporary files,
   * run directories, uid locks) is removed. Runs of live runner processes are left alone.
   */
  async sweep(maxAgeMs = 24 * 3600_000): Promise<number> {
    let swept = 0;
    const { dirs } = this.settings;
    const live = new Set<number>();
    for (const name of await fs.readdir(dirs.uids).catch(() => [] as string[])) {
      const uid = Number(name);
      const lock = path.join(dirs.uids, name);
      if (!Number.isInteger(uid)) {
        // A lock being made, or a stale one moved aside, by a runner that died meanwhile.
        const partial = /^(\d+)\.(?:stale|new)-(\d+)-/.exec(name);
        if (partial && !isAlive(Number(partial[2]))) await fs.rm(lock, { force: true });
        continue;
      }
      const stale = await fs.readFile(lock, 'utf8').catch(() => undefined);
      if (stale === undefined) continue;
      const owner = Number(stale);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        live.add(uid);
        continue;
      }
      // Taken over as a run would take it, and held while its leftovers go: a runner of this
      // machine that takes the uid meanwhile is never swept, nor its run's processes killed.
      if (!(await removeStaleLock(lock, stale)) || !(await createLock(lock))) {
        live.add(uid);
        continue;
      }
      await killUser(uid);
      await removeLeftoversOf(uid);
      await fs.rm(lock, { force: true });
      swept++;
    }
    for (const name of await fs.readdir(dirs.work).catch(() => [] as string[])) {
      const dir = path.join(dirs.work, name);
      const stat = await fs.stat(dir).catch(() => undefined);
      if (!stat) continue;
      const stale = this.isolated ? stat.uid !== process.getuid?.() && !live.has(stat.uid) : Date.now() - stat.mtimeMs > maxAgeMs;
      if (stale) {
        await removeTree(dir).catch(() => undefined);
        swept++;
      }
    }
    return swept;
  }

  async releaseUid(uid: number): Promise<void> {
    this.taken.delete(uid);
    await fs.rm(path.join(this.settings.dirs.uids, String(uid)), { force: true });
  }
}

/**
 * Removes a tree, however deep: Node's recursive removal works on whole paths and fails past
 * PATH_MAX (ENAMETOOLONG), which a script's nested directories reach; GNU rm walks it
 * relative to each directory.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    if (!(await removeWithRm([dir])) || fsSync.existsSync(dir)) throw new Error(`could not remove ${dir}`);
  }
}

/** What a uid leaves behind outside its run's directory: its files in the shared temporary directories (`leftoversOf`), System V IPC objects. */
export async function removeLeftoversOf(uid: number): Promise<void> {
  // Many paths at once, in a few command lines.
  const paths = leftoversOf(uid);
  for (let i = 0; i < paths.length; i += 500) await removeWithRm(paths.slice(i, i + 500));
  removeSysvIpcOf(uid);
}

/** What tar said went wrong: its first few messages, without the closing summary. */
function tarProblem(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/Exiting with failure status/.test(l));
  return lines.length > 0 ? lines.slice(0, 3).join('; ') : 'no message';
}

/** One run's place in the sandbox. */
export class SandboxRun {
  /** The close under way or done (one per run). */
  private closing: Promise<void> | undefined;

  constructor(
    private readonly sandbox: Sandbox,
    /** The working directory (HOME too). */
    private directory: string,
    /** The run's own uid (= gid), when isolated. */
    readonly uid: number | undefined,
    /** The run's memory cgroup, when the machine has them. */
    private readonly group?: RunGroup,
  ) {}

  get dir(): string {
    return this.directory;
  }

  /**
   * Names the directory after the run it now serves (one opened ahead of its run, for the
   * interpreter pool), as open() names a run's: a process working in it follows it.
   */
  async relabel(label: string): Promise<void> {
    const dir = this.sandbox.runDir(label);
    await fs.rename(this.directory, dir);
    this.directory = dir;
  }

  /** The command line that runs `command` as the run's user, with the limits (CPU may be Infinity). */
  wrap(command: string, args: string[], limits: SandboxLimits): { command: string; args: string[] } {
    const line: string[] = [];
    if (this.uid !== undefined || this.group) {
      this.group?.setLimitSync(limits.memoryBytes);
      const tools = this.uid !== undefined ? this.sandbox.settings.privateProc : undefined;
      line.push('/bin/sh', '-c', tools ? enterPrivateProcScript(tools) : enterScript, this.group?.procs ?? '/dev/null');
    }
    // --pdeathsig: a runner that dies takes its script with it (what the script started is
    // swept by the next runner on this machine, see Sandbox.sweep).
    if (this.uid !== undefined) {
      line.push('setpriv', `--reuid=${this.uid}`, `--regid=${this.uid}`, '--clear-groups', '--no-new-privs', '--pdeathsig=KILL', '--');
    } else if (this.sandbox.settings.setpriv) {
      line.push('setpriv', '--pdeathsig=KILL', '--');
    }
    const values = this.limitValues(limits);
    if (values) line.push('prlimit', ...Object.entries(values).map(([name, value]) => `--${name}=${value ?? 'unlimited'}`), '--');
    line.push(command, ...args);
    return { command: line[0]!, args: line.slice(1) };
  }

  /**
   * The limits as set on a process (soft = hard), by prlimit's option names (which the shim
   * and the fork server use too); null: unlimited. Undefined when limits do not apply here.
   */
  limitValues(limits: SandboxLimits): Record<string, number | null> | undefined {
    if (!this.sandbox.settings.prlimit) return undefined;
    return {
      as: Math.floor(limits.memoryBytes),
      cpu: Number.isFinite(limits.cpuSeconds) ? Math.max(1, Math.ceil(limits.cpuSeconds)) : null,
      nofile: limits.openFiles,
      fsize: Math.floor(limits.fileBytes),
      core: 0,
      // RLIMIT_NPROC counts every process of the real uid: only meaningful for a uid of its own.
      ...(this.uid !== undefined ? { nproc: limits.processes } : {}),
    };
  }

  /**
   * What a fork server makes an interpreter it forks for this run: what wrap() makes a
   * command (the memory group, the uid without groups, no new privileges, the parent-death
   * signal, umask 077, the same limits; see gef_runtime.py).
   */
  forkRequest(limits: SandboxLimits, env: Record<string, string>, nice = 0): ForkRequest {
    this.group?.setLimitSync(limits.memoryBytes);
    const values = this.limitValues(limits);
    return {
      dir: this.dir,
      env,
      nice,
      ...(this.uid !== undefined ? { uid: this.uid } : {}),
      ...(this.uid !== undefined && this.sandbox.settings.privateProc ? { privateProc: true } : {}),
      ...(this.group ? { procs: this.group.procs } : {}),
      ...(values ? { limits: values } : {}),
    };
  }

  /** Extracts a tar.gz into the run directory, as the run's user. */
  async extract(archive: string, limits: SandboxLimits, timeoutMs = 120_000): Promise<void> {
    const { command, args } = this.wrap('tar', ['-x', '-z', '-f', '-', '-C', this.dir, '--no-same-owner', '--no-same-permissions'], limits);
    await new Promise<void>((resolve, reject) => {
      // A group of its own: a stop signal to the runner's group does not end a draining run's extraction.
      const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' }, detached: true });
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4000) stderr += d.toString();
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`the archive could not be extracted (${signal ?? `exit code ${code}`}): ${tarProblem(stderr)}`));
      });
      const input = createReadStream(archive);
      input.on('error', (err) => {
        child.kill('SIGKILL');
        reject(err);
      });
      // tar may stop reading early when it fails; the close handler reports that.
      child.stdin.on('error', () => undefined);
      input.pipe(child.stdin);
    });
  }

  /**
   * Copies an extracted archive (a tree only the runner can reach, see ExtractedArchives)
   * into the run directory, owned by the run's user: directories, regular files (with their
   * modes) and symbolic links as they are (never followed); nothing else.
   */
  async populate(tree: string): Promise<void> {
    await copyTree(tree, await this.sandbox.manifest(tree), this.dir, this.uid);
  }

  /**
   * Lowers the memory limit of the run's processes together (a pooled interpreter started
   * with the default is given its run's); a no-op without memory cgroups.
   */
  async limitMemory(bytes: number): Promise<void> {
    await this.group?.setLimit(bytes);
  }

  /** Processes of the run the kernel killed for going past its memory limit (cgroups only). */
  oomKills(): number {
    return this.group?.oomKills() ?? 0;
  }

  /** CPU time the run's processes used together (seconds), where its memory group keeps it. */
  cpuSeconds(): number | undefined {
    return this.group?.cpuSeconds();
  }

  /**
   * Bytes on disk the run's files take: its directory and, when isolated, what its user
   * has in the shared temporary directories and the files its processes hold open deleted. At most `maxEntries` entries are looked at:
   * `complete` is false when there were more (the run made more files than it may).
   */
  async diskUsage(maxEntries = maxRunEntries): Promise<{ bytes: number; complete: boolean }> {
    let bytes = 0;
    let entries = 0;
    const seen = new Set<number>();
    const walk = async (target: string): Promise<void> => {
      if (entries++ >= maxEntries) return;
      const stat = await fs.lstat(target).catch(() => undefined);
      if (!stat) return;
      // A hard link counts once.
      if (stat.nlink > 1) {
        if (seen.has(stat.ino)) return;
        seen.add(stat.ino);
      }
      bytes += stat.blocks * 512;
      if (!stat.isDirectory()) return;
      for (const name of await fs.readdir(target).catch(() => [] as string[])) await walk(path.join(target, name));
    };
    await walk(this.dir);
    if (this.uid !== undefined) {
      for (const full of leftoversOf(this.uid)) await walk(full);
      bytes += await this.deletedOpenFileBytes();
    }
    return { bytes, complete: entries <= maxEntries };
  }

  /**
   * Bytes of files the run's processes hold open after deleting them: no directory shows
   * them, yet they fill the disk until closed. Read from /proc/<pid>/fd of each process of
   * the run (its memory group's, else its uid's).
   */
  private async deletedOpenFileBytes(): Promise<number> {
    let bytes = 0;
    const counted = new Set<string>();
    const pids = this.group ? this.group.members() : this.uid !== undefined ? processesOf(this.uid) : [];
    for (const pid of pids) {
      const fdDir = `/proc/${pid}/fd`;
      for (const fd of await fs.readdir(fdDir).catch(() => [] as string[])) {
        const target = await fs.readlink(path.join(fdDir, fd)).catch(() => '');
        if (!target.startsWith('/') || !target.endsWith(' (deleted)')) continue;
        const stat = await fs.stat(path.join(fdDir, fd)).catch(() => undefined);
        if (!stat?.isFile()) continue;
        const key = `${stat.dev}:${stat.ino}`;
        if (counted.has(key)) continue;
        counted.add(key);
        bytes += stat.blocks * 512;
      }
    }
    return bytes;
  }

  /**
   * Kills the run's processes at once (when isolated): those in its memory group when it has
   * one (every process of the run is in it: one read, where the scan of /proc stats every
   * process on the machine), else those the fast scan finds. close() kills through both.
   */
  killFound(): void {
    if (this.uid === undefined) return;
    if (this.group) this.group.killMembers();
    else killFound(this.uid);
  }

  /**
   * Kills every process of the run's user, wherever it went (when isolated). Through the
   * run's memory group when it has one (every process of the run is in it); the user's
   * processes are then looked for once more, and any found (or a group that would not
   * empty) gets the slower kill as the user.
   */
  async killAll(): Promise<void> {
    if (this.uid === undefined) return;
    if (this.group && (await this.group.killAll()) && processesOf(this.uid).length === 0) return;
    await killUser(this.uid);
  }

  /** Ends the run's place: processes killed, directory and temporary files removed, uid given back. */
  close(): Promise<void> {
    this.closing ??= this.sandbox.track(this.end());
    return this.closing;
  }

  private async end(): Promise<void> {
    await this.killAll();
    await this.group?.remove();
    try {
      await removeTree(this.dir);
    } finally {
      // Whatever became of the directory, the uid's other leftovers go and the uid is free.
      if (this.uid !== undefined) {
        try {
          await removeLeftoversOf(this.uid);
        } finally {
          await this.sandbox.releaseUid(this.uid);
        }
      }
    }
  }
}
