import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareRunnerDirs } from '../src/sandbox/runner-dirs';
import { leftoversOf, Sandbox } from '../src/sandbox/sandbox';
import { sysvIpcArgs } from '../src/sandbox/sysv-ipc';
import { isRoot } from './support/run-script-fixture';

describe('sysvIpcArgs', () => {
  const tables: Record<string, string> = {
    '/proc/sysvipc/shm': [
      '       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap',
      '  10315198          5   600                    56 10165 10337      0   101   104   101   104 1795934244 1795934252 1795934153                  4096                     0',
      '1347571270      98311   666              67108864  4242  4242      0 900219 900219 900219 900219 1795934244 1795934252 1795934153              67108864                     0',
      '1347571271      98312   666                  4096  4242  4242      0   101   101 900219 900219 1795934244 1795934252 1795934153                  4096                     0',
    ].join('\n'),
    '/proc/sysvipc/msg': [
      '       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime',
      '1347571271          7   666          512          1  4242     0 900219 900219 900219 900219 1795934244          0 1795934153',
    ].join('\n'),
  };

  it("names every object the uid owns or created (handed to another owner too), nobody else's", () => {
    expect(sysvIpcArgs(900219, (file) => tables[file])).toEqual(['-m', '98311', '-m', '98312', '-q', '7']);
    expect(sysvIpcArgs(900220, (file) => tables[file])).toEqual([]);
  });
});

// What a run leaves outside the usual places goes when it closes, and its uid is free again.
(isRoot ? describe : describe.skip)('closing a sandbox run (as root)', () => {
  let tmp: string;
  let sandbox: Sandbox;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-sandbox-leftovers-'));
    fs.chmodSync(tmp, 0o711);
    const dirs = await prepareRunnerDirs({ dataDir: tmp, sandboxed: true });
    sandbox = new Sandbox({ mode: 'on', prlimit: true, uidBase: 912_000, uidCount: 10, dirs });
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("finds a uid's entries at the top of each root and in root's sticky world-writable directories only, however many entries there are", async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'root-'));
    fs.chmodSync(root, 0o1777);
    const [uid, other] = [912_345, 912_346];
    const make = (rel: string, owner: number, mode: number, dir = false) => {
      const full = path.join(root, rel);
      if (dir) fs.mkdirSync(full);
      else fs.writeFileSync(full, 'x');
      fs.chownSync(full, owner, owner);
      fs.chmodSync(full, mode);
    };
    for (let i = 0; i < 50; i++) make(`filler-${i}`, 0, 0o644);
    make('mine', uid, 0o600);
    make('sticky', 0, 0o1777, true);
    make('sticky/mine', uid, 0o600);
    make('sticky/deeper', 0, 0o1777, true);
    make('sticky/deeper/mine', uid, 0o600);
    // Others could rename what is in these, or the directory itself: never entered.
    make('open', 0, 0o777, true);
    make('open/mine', uid, 0o600);
    make('others', other, 0o1777, true);
    make('others/mine', uid, 0o600);
    expect(leftoversOf(uid, 100, [root]).sort()).toEqual(['mine', 'sticky/deeper/mine', 'sticky/mine'].map((r) => path.join(root, r)));
    // The top of a root is read whole, whatever the bound on entries below.
    expect(leftoversOf(uid, 0, [root])).toEqual([path.join(root, 'mine')]);
  });

  it("removes its System V IPC objects, a tree deeper than PATH_MAX, its /tmp files and what it left in root's sticky world-writable directories, and frees its uid", async () => {
    const run = await sandbox.open('leftovers-test');
    const uid = run.uid!;
    const marker = `/tmp/gef-leftover-${uid}-${process.pid}`;
    // World-writable directories of someone else's (as /tmp/.X11-unix is), one inside another:
    // what the run leaves in them would be the next run's of the same uid to read.
    const shared = `/tmp/gef-shared-${uid}-${process.pid}`;
    fs.mkdirSync(path.join(shared, 'inner'), { recursive: true });
    fs.chmodSync(shared, 0o1777);
    fs.chmodSync(path.join(shared, 'inner'), 0o1777);
    const script = [
      'import ctypes, os, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'libc.shmat.restype = ctypes.c_void_p',
      'shm = libc.shmget(0, 1 << 20, 0o1666)',
      'addr = libc.shmat(shm, None, 0)',
      'ctypes.memset(addr, 65, 1 << 20)',
      'libc.shmdt(ctypes.c_void_p(addr))',
      'queue = libc.msgget(0, 0o1666)',
      'sems = libc.semget(0, 2, 0o1666)',
      'assert min(shm, queue, sems) >= 0, ctypes.get_errno()',
      'open(sys.argv[1], "w").write("left")',
      'open(sys.argv[2] + "/note", "w").write("left")',
      // A directory of its own it made unreadable: no removal as its user would get in.
      'os.makedirs(sys.argv[1] + "-locked/inner")',
      'open(sys.argv[1] + "-locked/inner/note", "w").write("left")',
      'os.chmod(sys.argv[1] + "-locked/inner", 0)',
      'os.chmod(sys.argv[1] + "-locked", 0)',
      'os.makedirs(sys.argv[2] + "/inner/kept/deeper")',
      'open(sys.argv[2] + "/inner/kept/deeper/note", "w").write("left")',
      // 30 levels of 200 characters: 6,000 bytes, past PATH_MAX (4,096), made one level at a time.
      'for i in range(30):',
      '    os.mkdir("x" * 200)',
      '    os.chdir("x" * 200)',
      'open("deep", "w").write("deep")',
    ].join('\n');
    const { command, args } = run.wrap('python3', ['-c', script, marker, shared], { memoryBytes: 512 * 1024 ** 2, cpuSeconds: 60, processes: 16, openFiles: 64, fileBytes: 4 * 1024 ** 2 });
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn(command, args, { stdio: 'inherit', cwd: run.dir, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      p.once('error', reject);
      p.once('close', resolve);
    });
    expect(code).toBe(0);
    expect(fs.existsSync(marker)).toBe(true);
    expect(fs.existsSync(path.join(shared, 'inner/kept/deeper/note'))).toBe(true);
    expect(sysvIpcArgs(uid).length).toBe(6);

    await run.close();
    expect(sysvIpcArgs(uid)).toEqual([]);
    expect(fs.existsSync(run.dir)).toBe(false);
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.existsSync(`${marker}-locked`)).toBe(false);
    // Its files in others' world-writable directories are gone; the directories stay.
    expect(fs.readdirSync(shared)).toEqual(['inner']);
    expect(fs.readdirSync(path.join(shared, 'inner'))).toEqual([]);
    fs.rmSync(shared, { recursive: true, force: true });
    expect(fs.existsSync(path.join(sandbox.settings.dirs.uids, String(uid)))).toBe(false);
  }, 30_000);

  it('settles once the closes nobody waited for have ended (a stopping runner waits for them)', async () => {
    const runs = await Promise.all([sandbox.open('settle-a'), sandbox.open('settle-b')]);
    for (const run of runs) fs.writeFileSync(path.join(run.dir, 'note'), 'left');
    for (const run of runs) void run.close();
    await sandbox.settled();
    for (const run of runs) {
      expect(fs.existsSync(run.dir)).toBe(false);
      expect(fs.existsSync(path.join(sandbox.settings.dirs.uids, String(run.uid)))).toBe(false);
    }
    await sandbox.settled();
  }, 30_000);
});

// A uid whose lock a dead runner left is taken over by one run only, however many start at once.
(isRoot ? describe : describe.skip)('taking over a uid a dead runner left (as root)', () => {
  let tmp: string;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-sandbox-takeover-'));
    fs.chmodSync(tmp, 0o711);
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('gives the one uid to one of two runs opened at once; the other finds none free', async () => {
    const dirs = await prepareRunnerDirs({ dataDir: tmp, sandboxed: true });
    const sandbox = new Sandbox({ mode: 'on', prlimit: true, uidBase: 913_000, uidCount: 1, dirs });
    // The lock of a runner process that is gone (a pid above the kernel's maximum is never alive).
    fs.writeFileSync(path.join(dirs.uids, '913000'), '4194305');
    const opened = await Promise.allSettled([sandbox.open('takeover-a'), sandbox.open('takeover-b')]);
    const runs = opened.filter((o): o is PromiseFulfilledResult<Awaited<ReturnType<Sandbox['open']>>> => o.status === 'fulfilled').map((o) => o.value);
    expect(runs.map((r) => r.uid)).toEqual([913_000]);
    expect(opened.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([expect.stringContaining('all 1 sandbox user ids are in use')]);
    expect(fs.readFileSync(path.join(dirs.uids, '913000'), 'utf8')).toBe(String(process.pid));
    expect(fs.readdirSync(dirs.uids)).toEqual(['913000']);
    await runs[0]!.close();
  }, 30_000);

  it('gives it to one of two runner processes of the machine taking it at once; leaves a lock being made alone', async () => {
    const dirs = await prepareRunnerDirs({ dataDir: path.join(tmp, 'two'), sandboxed: true });
    // Two runners of one machine: sandboxes of their own over the same directories.
    const [a, b] = [0, 1].map(() => new Sandbox({ mode: 'on', prlimit: true, uidBase: 913_100, uidCount: 1, dirs }));
    fs.writeFileSync(path.join(dirs.uids, '913100'), '4194305');
    const opened = await Promise.allSettled([a!.open('takeover-a'), b!.open('takeover-b')]);
    const runs = opened.filter((o): o is PromiseFulfilledResult<Awaited<ReturnType<Sandbox['open']>>> => o.status === 'fulfilled').map((o) => o.value);
    expect(runs).toHaveLength(1);
    expect(fs.readdirSync(dirs.uids)).toEqual(['913100']);
    await runs[0]!.close();
    // An empty lock is one another runner is writing: not taken over (nor swept while it runs).
    fs.writeFileSync(path.join(dirs.uids, '913100'), '');
    await expect(a!.open('while-made')).rejects.toThrow('all 1 sandbox user ids are in use');
    expect(fs.readFileSync(path.join(dirs.uids, '913100'), 'utf8')).toBe('');
  }, 30_000);
});
