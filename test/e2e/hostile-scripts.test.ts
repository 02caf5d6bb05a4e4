/**
 * Hostile scripts against the real stack and the runner's sandbox (setpriv, prlimit, memory
 * cgroups, process groups, nftables): each case is a script uploaded and run through the
 * REST API that tries to get out — the platform's secrets, the runner's files, other runs'
 * files, processes and executions, the machine's processes, memory, CPU and disk. Each
 * attempt must be contained, end with a log line saying which limit stopped it, and leave
 * the runner and other runs unaffected. The cases run at once, beside a gated victim run and
 * normal runs. Then a script that ignores its stop and goes on with its token after its run
 * was ended from outside. (Database and Temporal ports, the stack's private files and the
 * token after its run ended by itself are covered in executions.test.ts, "the sandbox".)
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runnerKeyDevSecret, serviceKeyDevSecret } from '@gef/common';
import { readStackInfo, runningParts } from '../harness/stack';
import { api, login, newUser, superadminCredentials } from './helpers/api';
import { executionLog, gate, publishScript, pythonApiCall, pythonGate, runScript, waitForExecution, waitForLog, type Gate, type LogLine } from './helpers/executions';

jest.setTimeout(600_000);

type Account = { id: string; token: string };
const unique = () => randomBytes(4).toString('hex');
const MiB = 1024 ** 2;

/** The sandbox's shared temporary directories, where a run's files must not outlive it. */
const sharedTempDirs = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock'];

/** Processes (live, not zombies) and top-level temporary files of a uid. */
function leftoversOf(uid: number): { processes: number[]; files: string[] } {
  const processes: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (lstatSync(`/proc/${entry}`).uid !== uid) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') processes.push(Number(entry));
    } catch {
      // gone
    }
  }
  const files: string[] = [];
  for (const dir of sharedTempDirs) {
    for (const name of (() => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    })()) {
      try {
        if (lstatSync(join(dir, name)).uid === uid) files.push(join(dir, name));
      } catch {
        // gone
      }
    }
  }
  return { processes, files };
}

/** Polls until the uid has nothing left on the machine (the runner clears a run after it ended). */
async function nothingLeftOf(uid: number): Promise<{ processes: number[]; files: string[] }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = leftoversOf(uid);
    if ((left.processes.length === 0 && left.files.length === 0) || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The uid a script logged as `uid=<n>`. */
const loggedUid = (log: LogLine[]): number => {
  const found = log.map((l) => /^uid=(\d+)$/.exec(l.text)).find((m) => m);
  if (!found) throw new Error(`no uid line in ${log.map((l) => l.text).join(' | ').slice(0, 1000)}`);
  return Number(found[1]);
};

const texts = (log: LogLine[]) => log.map((l) => `${l.level} ${l.text}`).join('\n');

// ── The scripts ──────────────────────────────────────────────────────────────────────────

/** A normal run's script. */
const normalMain = 'def run(params, logger):\n    logger.info("normal run")\n    return "OK"\n';

/**
 * The victim: another user's run, waiting at a gate with files of its own in /tmp and
 * /dev/shm (written with the default mode, as scripts do); then says whether they are intact.
 */
const victimMain = `${pythonGate}
def run(params, logger):
    me = os.environ["EXECUTION_ID"]
    paths = ["/tmp/gef-victim-" + me, "/dev/shm/gef-victim-" + me]
    for p in paths:
        with open(p, "w") as f:
            f.write("the victim's data")
    logger.info("victim ready")
    wait_gate(params)
    intact = []
    for p in paths:
        try:
            with open(p) as f:
                intact.append(f.read() == "the victim's data")
        except OSError:
            intact.append(False)
    return {"intact": intact}
`;

/**
 * The probe: everything a script may try without bringing itself down, each attempt's
 * outcome (the exception's name, or what it got) in the results.
 */
const probeMain = `import os, signal
${pythonApiCall}
def attempt(fn):
    try:
        r = fn()
        return "allowed" if r is None else r
    except Exception as e:
        return type(e).__name__

def read(path):
    with open(path, "rb") as f:
        f.read(1)
    return "allowed"

def write(path):
    with open(path, "w") as f:
        f.write("hostile")
    return "allowed"

def owner(pid):
    try:
        return os.stat("/proc/%s" % pid).st_uid
    except OSError:
        return None

def run(params, logger):
    me = os.environ["EXECUTION_ID"]
    uid = os.getuid()
    logger.info("uid=%d" % uid)
    victim = params["victim"]
    first, last = params["uid_first"], params["uid_last"]
    pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    # Environments of other processes (the runner's, the services', other runs').
    readable_environs = {}
    for p in pids:
        if owner(p) == uid:
            continue
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                readable_environs[p] = sorted(k.split(b"=")[0].decode() for k in f.read().split(b"\\0") if k)
        except OSError:
            pass
    with open("/proc/self/environ", "rb") as f:
        self_environ = f.read().decode("utf8", "replace")
    # The runner's directory, found from the environment's bin on PATH: <root>/environments/<hash>/bin.
    env_bin = os.environ["PATH"].split(":")[0]
    env_dir = os.path.dirname(env_bin)
    root = os.path.dirname(os.path.dirname(env_dir))
    site = [d for d in __import__("sys").path if d.startswith(env_dir) and d.endswith("site-packages")]
    # Processes of other sandbox users, as the machine's /proc showed them when the run was
    # submitted (its own /proc shows none of them).
    others = [p for p in params["others"] if p != os.getpid()]
    runner = params["runner_pid"]
    return {
        "environ": dict(os.environ, API_TOKEN="(its token)"),
        "self_environ": self_environ.replace(os.environ["API_TOKEN"], "(its token)"),
        "readable_environs": readable_environs,
        "runner_environ": attempt(lambda: read("/proc/%d/environ" % runner)),
        "parent_environ": attempt(lambda: read("/proc/%d/environ" % os.getppid())),
        # What its /proc lists: its own processes only (not the machine's, the runner's, other runs').
        "processes_of_others_listed": len([p for p in pids if owner(p) != uid]),
        "others_listed": len([p for p in others if str(p) in pids]),
        "runner_listed": str(runner) in pids or os.path.exists("/proc/%d" % runner),
        "shadow": attempt(lambda: read("/etc/shadow")),
        "root_home": attempt(lambda: os.listdir("/root")),
        "runner": {
            name: attempt(lambda n=name: os.listdir(os.path.join(root, n)))
            for name in ["archives", "extracted", "sandbox-uids", "work"]
        },
        "writes": {
            "environment_bin": attempt(lambda: write(os.path.join(env_bin, "hostile"))),
            "site_packages": attempt(lambda: write(os.path.join(site[0], "hostile.py"))) if site else "no site-packages",
            "environments": attempt(lambda: write(os.path.join(root, "environments", "hostile"))),
            "runner_root": attempt(lambda: write(os.path.join(root, "hostile"))),
            "work": attempt(lambda: write(os.path.join(root, "work", "hostile"))),
            "shim": attempt(lambda: write(os.path.join(root, "runtime", "gef_runtime.py"))),
            "etc_passwd": attempt(lambda: write("/etc/passwd")),
            "data_dir": attempt(lambda: write(os.path.join(params["data_dir"], "hostile"))),
            "gate_dir": attempt(lambda: write(os.path.join(os.path.dirname(params["gate"]), "open"))),
        },
        "leaves": {
            d: attempt(lambda d=d: write(os.path.join(d, "gef-hostile-" + me)))
            for d in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
        },
        "victim_files": {
            p: {
                "read": attempt(lambda p=p: read(p)),
                "write": attempt(lambda p=p: write(p)),
                "unlink": attempt(lambda p=p: os.unlink(p)),
            }
            for p in ["/tmp/gef-victim-" + victim, "/dev/shm/gef-victim-" + victim]
        },
        "others_found": len(others),
        "kill_others": sorted(set(attempt(lambda p=p: os.kill(p, signal.SIGKILL)) for p in others)),
        "kill_runner": attempt(lambda: os.kill(runner, signal.SIGKILL)),
        "kill_runner_group": attempt(lambda: os.killpg(os.getpgid(runner), signal.SIGKILL)),
        "token_on_victim": {
            "patch": call("PATCH", "/api/v1/execution/" + victim, {"progress": 99}),
            "log": call("POST", "/api/v1/execution/" + victim + "/log", {"text": "hostile", "level": "ERROR"}),
            "finish": call("PATCH", "/api/v1/execution/" + victim, {"status": "FINISHED"}),
        },
    }
`;

/** A fork bomb: children that stay (half of them in sessions of their own) until fork is refused. */
const forkBombMain = `import os, time

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    n = 0
    while True:
        pid = os.fork()
        if pid == 0:
            try:
                if n % 2:
                    os.setsid()
                time.sleep(600)
            finally:
                os._exit(0)
        n += 1
        if n > 100000:
            return "never refused"
`;

/** One allocation past the memory limit. */
const memoryMain = `import os

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    hog = b"x" * (600 * 1024 * 1024)
    return len(hog)
`;

/** Processes each under the memory limit, together far past it. */
const forkedMemoryMain = `import os, time

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    children = []
    for i in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                hog = b"x" * (150 * 1024 * 1024)
                time.sleep(3)
            finally:
                os._exit(0)
        children.append(pid)
    died = [os.waitpid(pid, 0)[1] for pid in children]
    killed = [s for s in died if os.WIFSIGNALED(s)]
    if killed:
        raise RuntimeError("%d of the children were killed" % len(killed))
    return "600 MB in four processes"
`;

/** A spin that outlasts its CPU time (cpu_limit 0.05 core of a 60 s timeout: 8 s of CPU). */
const spinMain = `import os

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    while True:
        pass
`;

/**
 * The same spin in four processes, each far inside the CPU time of one (8 s) when the four
 * have used it together.
 */
const forkedSpinMain = `import os

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    for _ in range(3):
        if os.fork() == 0:
            while True:
                pass
    while True:
        pass
`;

/** One file past the file size limit. */
const bigFileMain = `import os

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    chunk = b"x" * (1024 * 1024)
    with open("big", "wb") as f:
        for i in range(params["mib"]):
            f.write(chunk)
    return "wrote %d MiB" % params["mib"]
`;

/** Many files under the file size limit, in its directory and /tmp, together past the disk quota. */
const fillDiskMain = `import os

def run(params, logger):
    logger.info("uid=%d" % os.getuid())
    chunk = b"x" * (1024 * 1024)
    for i in range(params["files"]):
        path = ("fill-%d" if i % 2 else "/tmp/gef-fill-" + os.environ["EXECUTION_ID"] + "-%d") % i
        with open(path, "wb") as f:
            for _ in range(params["file_mib"]):
                f.write(chunk)
    return "wrote %d files" % params["files"]
`;

/**
 * After the end: its stop (SIGTERM) noted, not obeyed. Once the gate opens (after its run was
 * ended from outside) it tries its token on its execution and says each answer, reports
 * progress through the runtime, waits for its stop (so the runner learns of the end before
 * it returns) and returns a result within the runner's grace period.
 */
const afterTheEndMain = `import signal
${pythonGate}${pythonApiCall}
def run(params, logger):
    me = os.environ["EXECUTION_ID"]
    stops = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stops.append(signum))
    logger.info("uid=%d" % os.getuid())
    logger.send_progress(20)
    logger.info("running until the gate")
    wait_gate(params)
    path = "/api/v1/execution/" + me
    for what, method, sub, body in [
        ("progress", "PATCH", "", {"progress": 90}),
        ("status", "PATCH", "", {"status": "FINISHED", "results": "set with the token after the end"}),
        ("log", "POST", "/log", {"text": "posted with the token after the end", "level": "ERROR"}),
    ]:
        print("token after the end: %s %d" % (what, call(method, path + sub, body)))
    logger.send_progress(95)
    logger.info("still running after the end")
    deadline = time.time() + 300
    while not stops and time.time() < deadline:
        time.sleep(0.05)
    return "returned after the end"
`;

// ── The cases ────────────────────────────────────────────────────────────────────────────

let runnerPid: number | undefined;

/** Processes of the sandbox users (the victim's, the pool's interpreters), from the machine's /proc. */
function sandboxProcesses(uidFirst: number, uidLast: number): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const uid = statSync(`/proc/${p}`).uid;
        return uid >= uidFirst && uid <= uidLast;
      } catch {
        return false;
      }
    })
    .map(Number);
}

beforeAll(async () => {
  runnerPid = (await runningParts()).runner;
  expect(runnerPid).toBeDefined();
});

it('contains every hostile script, says which limit ended it, and leaves the runner and other runs unaffected', async () => {
  const stack = readStackInfo();
  // The runner's settings as it runs (the launcher's and the harness's): the limits, its uids.
  const runnerEnv = Object.fromEntries(
    readFileSync(`/proc/${runnerPid}/environ`, 'utf8')
      .split('\0')
      .filter((kv) => kv.startsWith('SANDBOX_'))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const uidFirst = Number(runnerEnv['SANDBOX_UID_BASE']);
  const uidLast = uidFirst + Number(runnerEnv['SANDBOX_UID_COUNT'] ?? 1000) - 1;
  const fileLimit = Number(runnerEnv['SANDBOX_MAX_FILE_BYTES'] ?? 2 * 1024 ** 3);
  const diskQuota = Number(runnerEnv['SANDBOX_MAX_DISK_BYTES'] ?? 10 * 1024 ** 3);
  // Each user runs at most 3 scripts at once: the cases are spread over users.
  const [victimUser, probeUser, bombUser, memoryUser, limitsUser] = await Promise.all([newUser('hostile-victim'), newUser('hostile-probe'), newUser('hostile-bomb'), newUser('hostile-memory'), newUser('hostile-limits')]);
  const publish = (user: Account, label: string, main: string, config: Record<string, unknown> = {}) => publishScript(user.token, `Hostile ${label} ${unique()}`, main, config);
  const [normal, victim, probe, forkBomb, memory, forkedMemory, spin, forkedSpin, bigFile, fillDisk] = await Promise.all([
    publish(victimUser, 'Normal', normalMain),
    publish(victimUser, 'Victim', victimMain),
    publish(probeUser, 'Probe', probeMain),
    publish(bombUser, 'Fork Bomb', forkBombMain, { timeout: 120 }),
    publish(memoryUser, 'Memory', memoryMain, { memory_limit: 300 * MiB }),
    publish(memoryUser, 'Forked Memory', forkedMemoryMain, { memory_limit: 300 * MiB }),
    publish(limitsUser, 'Spin', spinMain, { cpu_limit: 0.05, timeout: 60 }),
    publish(limitsUser, 'Forked Spin', forkedSpinMain, { cpu_limit: 0.05, timeout: 60 }),
    publish(limitsUser, 'Big File', bigFileMain),
    publish(bombUser, 'Fill Disk', fillDiskMain, { timeout: 300 }),
  ]);

  // The victim waits at its gate while the others go at it.
  const victimGate: Gate = gate();
  try {
    const victimRun = await runScript(victimUser.token, victim.slug, { body: { gate: victimGate.path } });
    await waitForLog(victimUser.token, victimRun.id, (lines) => lines.some((l) => l.text === 'victim ready'));

    const fileMiB = Math.ceil((fileLimit * 1.5) / MiB);
    const fileCount = Math.max(4, Math.ceil((diskQuota * 4) / fileLimit));
    const fileEach = Math.max(1, Math.floor((fileLimit * 0.9) / MiB));
    const [probeRun, bombRun, memoryRun, forkedMemoryRun, spinRun, forkedSpinRun, bigFileRun, fillDiskRun, alongside] = await Promise.all([
      runScript(probeUser.token, probe.slug, {
        body: { victim: victimRun.id, runner_pid: runnerPid, others: sandboxProcesses(uidFirst, uidLast), uid_first: uidFirst, uid_last: uidLast, data_dir: stack.dataDir, gate: victimGate.path },
      }),
      runScript(bombUser.token, forkBomb.slug),
      runScript(memoryUser.token, memory.slug),
      runScript(memoryUser.token, forkedMemory.slug),
      runScript(limitsUser.token, spin.slug),
      runScript(limitsUser.token, forkedSpin.slug),
      runScript(limitsUser.token, bigFile.slug, { body: { mib: fileMiB } }),
      runScript(bombUser.token, fillDisk.slug, { body: { files: fileCount, file_mib: fileEach } }),
      runScript(victimUser.token, normal.slug),
    ]);

    const outcome = async (user: Account, run: { id: string }) => {
      const done = await waitForExecution(user.token, run.id, undefined, 400_000);
      return { status: done.status as string, results: done.results, log: await executionLog(user.token, run.id) };
    };
    const [probed, bombed, memoryHog, forkedHog, spun, forkedSpun, big, filled, normalAlongside] = await Promise.all([
      outcome(probeUser, probeRun),
      outcome(bombUser, bombRun),
      outcome(memoryUser, memoryRun),
      outcome(memoryUser, forkedMemoryRun),
      outcome(limitsUser, spinRun),
      outcome(limitsUser, forkedSpinRun),
      outcome(limitsUser, bigFileRun),
      outcome(bombUser, fillDiskRun),
      outcome(victimUser, alongside),
    ]);

    // ── The probe: nothing of the platform, the runner or the victim is within reach.
    expect({ status: probed.status, log: probed.status === 'FINISHED' ? '' : texts(probed.log) }).toEqual({ status: 'FINISHED', log: '' });
    const r = probed.results;
    for (const key of Object.keys(r.environ)) expect({ key, allowed: /^(EXECUTION_ID|ENV|API_URL|API_TOKEN|PATH|HOME|LANG|LANGUAGE|LC_[A-Z]+)$/.test(key) }).toEqual({ key, allowed: true });
    // The stack's services run with the development keys unless its environment names others.
    const secrets = new Set<string>([superadminCredentials().password, stack.keycloak.clientSecret, stack.keycloak.adminPassword, serviceKeyDevSecret.devValue, runnerKeyDevSecret.devValue]);
    for (const env of Object.values(stack.env)) {
      for (const [key, value] of Object.entries(env)) if (/SECRET|PASSWORD|DATABASE_URL|TOKEN|API_KEY/.test(key) && value.length >= 8) secrets.add(value);
    }
    const everything = JSON.stringify(r);
    for (const secret of secrets) expect({ leaked: everything.includes(secret) }).toEqual({ leaked: false });
    expect(r.readable_environs).toEqual({});
    // Its /proc is its own: the runner's and its parent's entries are not there at all.
    expect(r).toMatchObject({ runner_environ: 'FileNotFoundError', parent_environ: 'FileNotFoundError', shadow: 'PermissionError', root_home: 'PermissionError' });
    expect(r).toMatchObject({ processes_of_others_listed: 0, others_listed: 0, runner_listed: false });
    expect(r.runner).toEqual({ archives: 'PermissionError', extracted: 'PermissionError', 'sandbox-uids': 'PermissionError', work: 'PermissionError' });
    expect(r.writes).toEqual({
      environment_bin: 'PermissionError',
      site_packages: 'PermissionError',
      environments: 'PermissionError',
      runner_root: 'PermissionError',
      work: 'PermissionError',
      shim: 'PermissionError',
      etc_passwd: 'PermissionError',
      data_dir: 'PermissionError',
      gate_dir: 'PermissionError',
    });
    // What it may leave in the shared temporary directories goes with its run (below).
    expect(Object.values(r.leaves)).toEqual(['allowed', 'allowed', 'allowed', 'allowed']);
    for (const [path, tried] of Object.entries(r.victim_files)) expect({ path, tried }).toEqual({ path, tried: { read: 'PermissionError', write: 'PermissionError', unlink: 'PermissionError' } });
    // Other runs' processes (the victim's, the pool's interpreters) and the runner's: not its to signal.
    expect(r.others_found).toBeGreaterThan(0);
    // (One may have ended meanwhile.)
    expect(r.kill_others.filter((e: string) => e !== 'ProcessLookupError')).toEqual(['PermissionError']);
    expect(r).toMatchObject({ kill_runner: 'PermissionError', kill_runner_group: 'PermissionError' });
    // Its token on another run (of another user, running): refused.
    for (const [what, status] of Object.entries(r.token_on_victim)) expect({ what, refused: [403, 404].includes(status as number) }).toEqual({ what, refused: true });
    expect(await nothingLeftOf(loggedUid(probed.log))).toEqual({ processes: [], files: [] });

    // ── Each limit: FAILED, with a line saying which, and nothing of the run left behind.
    const expectLimit = async (name: string, done: { status: string; log: LogLine[] }, said: RegExp) => {
      expect({ name, status: done.status, said: done.log.some((l) => l.level === 'ERROR' && said.test(l.text)) || texts(done.log).slice(-3000) }).toEqual({ name, status: 'FAILED', said: true });
      expect({ name, left: await nothingLeftOf(loggedUid(done.log)) }).toEqual({ name, left: { processes: [], files: [] } });
    };
    await expectLimit('fork bomb', bombed, /^Too many processes: .*limit is \d+ processes/);
    await expectLimit('allocation', memoryHog, /^Memory limit exceeded: .*300 MiB/);
    await expectLimit('forked allocations', forkedHog, /^Memory limit exceeded: the script's processes went past their limit of 300 MiB together/);
    await expectLimit('spin', spun, /^CPU time limit exceeded/);
    // Each process far inside the limit of one: stopped for what they used together.
    await expectLimit('forked spin', forkedSpun, /^CPU time limit exceeded: the script's processes used [\d.]+ s of CPU time together, more than its limit of 8 s/);
    await expectLimit('big file', big, /^File size limit exceeded/);
    await expectLimit('disk', filled, /^Disk quota exceeded/);
    expect(filled.log.some((l) => l.text.startsWith('wrote '))).toBe(false);

    // ── The victim and the runs beside and after: unaffected.
    expect(normalAlongside).toMatchObject({ status: 'FINISHED', results: 'OK' });
    victimGate.open();
    const victimDone = await waitForExecution(victimUser.token, victimRun.id);
    expect(victimDone).toMatchObject({ status: 'FINISHED', results: { intact: [true, true] } });
    expect(victimDone.progress).toBe(100);
    const victimLog = await executionLog(victimUser.token, victimRun.id);
    expect(victimLog.some((l) => l.text === 'hostile')).toBe(false);
    const after = await runScript(victimUser.token, normal.slug);
    expect(await waitForExecution(victimUser.token, after.id)).toMatchObject({ status: 'FINISHED', results: 'OK' });
    expect((await runningParts()).runner).toBe(runnerPid);
  } finally {
    victimGate.open();
  }
});

it("refuses a script's token once its run was ended from outside, while the script, ignoring its stop, still runs", async () => {
  const superadmin = superadminCredentials();
  const [user, adminToken] = await Promise.all([newUser('hostile-after-end'), login(superadmin.email, superadmin.password).then((r) => r.access_token)]);
  const script = await publishScript(user.token, `Hostile After The End ${unique()}`, afterTheEndMain);
  const g: Gate = gate();
  try {
    const run = await runScript(user.token, script.slug, { body: { gate: g.path } });
    await waitForLog(user.token, run.id, (lines) => lines.some((l) => l.text === 'running until the gate'));
    // An ADMIN (an external runtime) ends it; the runner stops the script (SIGTERM, grace, SIGKILL).
    const path = `/api/v1/execution/${run.id}`;
    const failed = await api('PATCH', path, { token: adminToken, body: { status: 'FAILED', progress: 40 } });
    expect(failed.status).toBe(200);
    // Through the gate at once: its calls come after the terminal status and within the grace period.
    g.open();
    const ended = failed.body.data;
    expect(ended).toMatchObject({ status: 'FAILED', progress: 40, results: null });
    const log = await waitForLog(user.token, run.id, (lines) => lines.some((l) => /^The script (stopped|did not stop)/.test(l.text)));

    // Each call with its token was made, and refused: the execution is terminal.
    const answers = Object.fromEntries(log.map((l) => /^token after the end: (\w+) (\d+)$/.exec(l.text)).flatMap((m) => (m ? [[m[1], Number(m[2])]] : [])));
    expect({ answers, log: Object.keys(answers).length === 3 ? '' : texts(log) }).toEqual({ answers: { progress: 401, status: 401, log: 401 }, log: '' });
    // Nothing about the execution changed: not by its token, nor by its progress and result through the runner.
    expect(log.some((l) => /^still running after the end/.test(l.text))).toBe(true);
    expect(log.some((l) => l.text === 'posted with the token after the end')).toBe(false);
    expect((await api('GET', path, { token: adminToken })).body.data).toEqual(ended);
    // Nothing of the run is left on the machine.
    expect(await nothingLeftOf(loggedUid(log))).toEqual({ processes: [], files: [] });
  } finally {
    g.open();
  }
});
