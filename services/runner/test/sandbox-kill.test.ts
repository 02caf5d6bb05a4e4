import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openRunGroup, removeMemoryCgroups, setUpMemoryCgroups, type MemoryCgroups } from '../src/sandbox/memory-cgroups';
import { prepareRunnerDirs } from '../src/sandbox/runner-dirs';
import { Sandbox } from '../src/sandbox/sandbox';
import { isRoot } from './support/run-script-fixture';

/** Memory cgroups here (root, a writable hierarchy), or undefined. */
async function cgroupsHere(): Promise<MemoryCgroups | undefined> {
  if (!isRoot) return undefined;
  try {
    return await setUpMemoryCgroups();
  } catch {
    return undefined;
  }
}

/** Whether a process runs (a zombie, killed and not yet reaped, does not). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

// A run's memory group holds every process the run started, wherever it went: killing
// through it needs no process of its own (no `kill -1` as the user), and closing the run
// leaves nothing of it behind.
describe('closing a sandbox run with a memory group', () => {
  let groups: MemoryCgroups | undefined;
  let tmp: string;
  let sandbox: Sandbox;

  beforeAll(async () => {
    groups = await cgroupsHere();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-sandbox-kill-'));
    fs.chmodSync(tmp, 0o711);
    const dirs = await prepareRunnerDirs({ dataDir: tmp, sandboxed: true });
    sandbox = new Sandbox({ mode: 'on', prlimit: true, uidBase: 911_000, uidCount: 10, dirs, ...(groups ? { memoryGroups: groups } : {}) });
  });
  afterAll(async () => {
    if (groups) await removeMemoryCgroups(groups);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A run whose script left a child in a session of its own, non-dumpable; the child's pid. */
  async function runWithEscapedChild(label: string): Promise<{ run: Awaited<ReturnType<Sandbox['open']>>; pid: number }> {
    const run = await sandbox.open(label);
    const ready = path.join(run.dir, 'ready');
    // A child in a session of its own, non-dumpable, that says where it is and waits.
    const child = [
      'import ctypes, os, subprocess, sys, time',
      'code = "import ctypes, os, sys, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); open(sys.argv[1], \'w\').write(str(os.getpid())); time.sleep(120)"',
      'subprocess.Popen([sys.executable, "-c", code, sys.argv[1]], start_new_session=True)',
    ].join('\n');
    const { command, args } = run.wrap('python3', ['-c', child, ready], { memoryBytes: 512 * 1024 ** 2, cpuSeconds: 60, processes: 16, openFiles: 64, fileBytes: 1024 ** 2 });
    await new Promise<void>((resolve, reject) => {
      const p = spawn(command, args, { stdio: 'ignore', cwd: run.dir, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      p.once('error', reject);
      p.once('close', () => resolve());
    });
    for (let i = 0; i < 500 && !(fs.existsSync(ready) && fs.readFileSync(ready, 'utf8') !== ''); i++) await new Promise((r) => setTimeout(r, 10));
    const pid = Number(fs.readFileSync(ready, 'utf8'));
    expect(alive(pid)).toBe(true);
    return { run, pid };
  }

  const maybe = isRoot ? it : it.skip;
  maybe('kills an escaped, non-dumpable process of the run through its group', async () => {
    if (!groups) {
      // No memory groups on this machine: the sandbox kills as the user instead (other tests).
      expect(sandbox.settings.memoryGroups).toBeUndefined();
      return;
    }
    const { run, pid } = await runWithEscapedChild('kill-test');

    // The run's group (the one its processes entered), killed on its own.
    const group = await openRunGroup(groups, `uid-${run.uid}`);
    const memberFiles = group.procs.split(':');
    for (const file of memberFiles) expect(fs.readFileSync(file, 'utf8').split('\n')).toContain(String(pid));
    expect(await group.killAll()).toBe(true);
    expect(alive(pid)).toBe(false);
    for (const file of memberFiles) expect(fs.readFileSync(file, 'utf8')).toBe('');

    await run.close();
    expect(fs.existsSync(run.dir)).toBe(false);
    for (const file of memberFiles) expect(fs.existsSync(path.dirname(file))).toBe(false);
  }, 30_000);

  // RLIMIT_CPU counts each process alone; the run's groups count them all, those that ended too.
  maybe("counts the CPU time of the run's processes together, forked and ended ones included", async () => {
    if (!groups) {
      expect(sandbox.settings.memoryGroups).toBeUndefined();
      return;
    }
    const run = await sandbox.open('cpu-test');
    const spin = [
      'import os, time',
      'def spin(seconds):',
      '    end = time.process_time() + seconds',
      '    while time.process_time() < end: pass',
      'children = [pid for pid in (os.fork() for _ in range(3)) if pid != 0 or (spin(0.4), os._exit(0))]',
      'for pid in children: os.waitpid(pid, 0)',
    ].join('\n');
    const { command, args } = run.wrap('python3', ['-c', spin], { memoryBytes: 512 * 1024 ** 2, cpuSeconds: 60, processes: 16, openFiles: 64, fileBytes: 1024 ** 2 });
    await new Promise<void>((resolve, reject) => {
      const p = spawn(command, args, { stdio: 'ignore', cwd: run.dir, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      p.once('error', reject);
      p.once('close', () => resolve());
    });
    // Three children of 0.4 s each, all ended: 1.2 s at least, where CPU time is counted.
    expect(run.cpuSeconds()).toBeGreaterThanOrEqual(1.2);
    await run.close();
  }, 30_000);

  // What a run does the moment its script ends (output still held open by a stray process):
  // one read of the group's members, no scan of /proc.
  maybe('kills an escaped, non-dumpable process at once when the run kills what it finds', async () => {
    if (!groups) {
      expect(sandbox.settings.memoryGroups).toBeUndefined();
      return;
    }
    const { run, pid } = await runWithEscapedChild('kill-found-test');
    run.killFound();
    for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
    expect(alive(pid)).toBe(false);
    await run.close();
  }, 30_000);
});
