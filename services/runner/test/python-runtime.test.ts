import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { processesOf } from '../src/sandbox/sandbox';
import { Fixture, isRoot } from './support/run-script-fixture';

const configuration = JSON.stringify({ name: 'test script' });

// The runtime shim with the real python3, in the sandbox (as an unprivileged user when the
// tests run as root, as they do here).
describe.each([
  ['spawned', false],
  ['forked by the fork server', true],
])('the Python runtime shim, interpreters %s', (_how, forked) => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off', forked).init();
  });
  afterAll(() => fixture.cleanup());

  it('runs run(params, logger): every level, float progress, printed output, dict results', async () => {
    const main = [
      'import sys',
      'def run(params, logger):',
      '    logger.debug("debug %s", params["name"])',
      '    logger.info("info")',
      '    logger.warn("warn")',
      '    logger.warning("warning")',
      '    print("printed", 42)',
      '    logger.send_progress(12.5)',
      '    logger.error("error")',
      '    logger.critical("critical")',
      '    print("to stderr", file=sys.stderr)',
      '    try:',
      '        1 / 0',
      '    except ZeroDivisionError:',
      '        logger.exception("caught")',
      '    logger.send_progress(99.9)',
      '    return {"name": params["name"], "env": params["ENV"], "id": params["EXECUTION_ID"], "n": [1, 2.5, None]}',
    ].join('\n');
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { params: { name: 'x' } });
    expect(r.outcome.kind).toBe('result');
    expect(JSON.parse((r.outcome as { resultJson: string }).resultJson)).toEqual({
      name: 'x',
      env: 'test',
      id: '00000000-0000-4000-8000-000000000001',
      n: [1, 2.5, null],
    });
    expect(r.lines.slice(0, 9).map((l) => [l.level, l.text])).toEqual([
      ['DEBUG', 'debug x'],
      ['INFO', 'info'],
      ['WARNING', 'warn'],
      ['WARNING', 'warning'],
      ['INFO', 'printed 42'],
      ['ERROR', 'error'],
      ['CRITICAL', 'critical'],
      ['WARNING', 'to stderr'],
      ['ERROR', expect.stringContaining('caught\nTraceback (most recent call last):')],
    ]);
    expect(r.lines[8]!.text).toContain('ZeroDivisionError: division by zero');
    expect(r.progress).toEqual([12.5, 99.9]);
    expect(fs.existsSync(r.dir)).toBe(false);
  }, 30_000);

  it("sends the lines of the logger's children, which can report progress too", async () => {
    const main = [
      'import logging',
      'def run(params, logger):',
      '    step = logger.getChild("step")',
      '    step.info("child %d", 1)',
      '    step.debug("child debug")',
      '    step.send_progress(40)',
      '    step.getChild("deeper").warning("deeper")',
      '    logging.getLogger("gef.script.by_name").info("by name")',
      '    logging.getLogger("elsewhere").info("a library line, below the root\'s level")',
      '    return type(step).__name__',
    ].join('\n');
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"GefLogger"' });
    expect(r.lines.map((l) => [l.level, l.text])).toEqual([
      ['INFO', 'child 1'],
      ['DEBUG', 'child debug'],
      ['WARNING', 'deeper'],
      ['INFO', 'by name'],
    ]);
    expect(r.progress).toEqual([40]);
  }, 30_000);

  it('imports src/main.py as a package: relative and sibling imports work', async () => {
    const r = await fixture.run({
      'configuration.json': configuration,
      'src/__init__.py': '',
      'src/helper.py': 'VALUE = "from helper"\n',
      'src/other.py': 'OTHER = "sibling"\n',
      'src/main.py': 'from .helper import VALUE\nimport other\ndef run(params, logger):\n    return [VALUE, other.OTHER]\n',
    });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '["from helper","sibling"]' });
  }, 30_000);

  it("gives scripts written for gefcore its api and loggers modules, over the run's channel", async () => {
    const main = [
      'def run(params, logger):',
      '    from gefcore.api import patch_execution, save_log, get_params, EXECUTION_ID',
      '    from gefcore.loggers import get_logger, GEFLogger',
      '    patch_execution(json={"progress": 25})',
      '    save_log(json={"text": "saved", "level": "warn"})',
      '    save_log(json={"text": "odd level", "level": "loud"})',
      '    patch_execution(json={"progress": 50, "status": "FINISHED"})',
      '    get_logger().info("through get_logger")',
      '    get_logger("step").send_progress(75)',
      '    got = get_params()',
      '    got["name"] = "changed"',
      '    import gefcore',
      '    return [get_params()["name"], EXECUTION_ID, isinstance(get_logger(), GEFLogger), gefcore.__name__]',
    ].join('\n');
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { params: { name: 'x' } });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '["x","00000000-0000-4000-8000-000000000001",true,"gefcore"]' });
    expect(r.lines.map((l) => [l.level, l.text])).toEqual([
      ['WARNING', 'saved'],
      ['INFO', 'odd level'],
      ['WARNING', expect.stringMatching(/^gefcore\.api\.patch_execution: status not sent/)],
      ['INFO', 'through get_logger'],
    ]);
    expect(r.progress).toEqual([25, 50, 75]);
  }, 30_000);

  it('leaves a gefcore of the script’s own in place', async () => {
    const r = await fixture.run({
      'configuration.json': configuration,
      'src/gefcore/__init__.py': 'OWN = True\n',
      'src/main.py': [
        'import gefcore, importlib',
        'def run(params, logger):',
        '    try:',
        '        importlib.import_module("gefcore.api")',
        '        api = "shim api"',
        '    except ImportError:',
        '        api = "no api"',
        '    return [getattr(gefcore, "OWN", False), api]',
      ].join('\n'),
    });
    // Its own gefcore, without this one's modules added to it.
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '[true,"no api"]' });
  }, 30_000);

  it('ends FAILED with an ERROR line holding the traceback when the script raises', async () => {
    const main = 'def helper():\n    raise ValueError("bad input")\n\ndef run(params, logger):\n    logger.info("before")\n    helper()\n';
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
    expect(r.outcome).toEqual({ kind: 'failed', message: 'ValueError: bad input' });
    const error = r.lines.find((l) => l.level === 'ERROR')!;
    expect(error.text).toMatch(/^Traceback \(most recent call last\):/);
    expect(error.text).toContain('src/main.py", line 2, in helper');
    expect(error.text).toContain('ValueError: bad input');
    // The shim's own frames are not the script's business.
    expect(error.text).not.toContain('gef_runtime.py');
  }, 30_000);

  it('ends FAILED with a line saying so when the result is not JSON', async () => {
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': 'def run(params, logger):\n    return {"s": {1, 2}}\n' });
    expect(r.outcome).toEqual({ kind: 'failed', message: 'the result is not JSON' });
    expect(r.lines).toContainEqual({ level: 'ERROR', text: expect.stringMatching(/returned a value that is not JSON \(dict\): Object of type set is not JSON serializable/) });
  }, 30_000);

  it('fails cleanly when src/main.py has no run()', async () => {
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': 'x = 1\n' });
    expect(r.outcome).toMatchObject({ kind: 'failed', message: expect.stringContaining('no run(params, logger)') });
  }, 30_000);

  it('stops a script at its wall-clock timeout, the whole process group', async () => {
    const main = 'import subprocess, time\ndef run(params, logger):\n    subprocess.Popen(["sleep", "60"])\n    logger.info("sleeping")\n    time.sleep(60)\n';
    const started = Date.now();
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { timeoutMs: 1500 });
    expect(r.outcome).toEqual({ kind: 'timeout', killed: false });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.lines).toContainEqual({ level: 'INFO', text: 'sleeping' });
  }, 30_000);

  it('kills a script that ignores SIGTERM after the grace period', async () => {
    const main = 'import signal, time\ndef run(params, logger):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    logger.info("ignoring TERM")\n    time.sleep(60)\n';
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { stopAfterMs: 800, killGraceMs: 500 });
    expect(r.outcome).toEqual({ kind: 'stopped', reason: 'cancel', killed: true });
  }, 30_000);

  it('ends a script that sent its outcome and goes on (a thread left running, or a message on fd 3 of its own), and the timeout and stops still end it', async () => {
    // A non-daemon thread holds the interpreter after run() returned: the result stands.
    const thread = 'import threading, time\ndef run(params, logger):\n    threading.Thread(target=time.sleep, args=(3600,)).start()\n    return "OK"\n';
    const lingering = await fixture.run({ 'configuration.json': configuration, 'src/main.py': thread }, { killGraceMs: 500 });
    expect(lingering.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    // A forged result on the channel, then sleeping: neither the result nor the sleep holds off the stop.
    const forged = 'import os, time\ndef run(params, logger):\n    os.write(3, b\'{"t":"result","v":"forged"}\\n\')\n    time.sleep(3600)\n';
    const stopped = await fixture.run({ 'configuration.json': configuration, 'src/main.py': forged }, { timeoutMs: 60_000, stopAfterMs: 300, killGraceMs: 60_000 });
    expect(stopped.outcome).toEqual({ kind: 'result', resultJson: '"forged"' });
    const timedOut = await fixture.run({ 'configuration.json': configuration, 'src/main.py': forged }, { timeoutMs: 1000, killGraceMs: 60_000 });
    expect(timedOut.outcome).toEqual({ kind: 'result', resultJson: '"forged"' });
  }, 60_000);

  it('reports a process that dies without a result', async () => {
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': 'import os\ndef run(params, logger):\n    os._exit(3)\n' });
    expect(r.outcome).toEqual({ kind: 'exited', code: 3, signal: null });
  }, 30_000);

  it('cuts a printed or logged line past 36 KiB in the interpreter (the runner cuts at 32 KiB once it masked tokens): one past a message\'s 64 MiB failed a run that returned', async () => {
    const main = [
      'def run(params, logger):',
      '    print("p" * (65 * 1024 * 1024))',
      '    logger.info("l" * (40 * 1024))',
      '    return "OK"',
    ].join('\n');
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { limits: { memoryBytes: 2 * 1024 ** 3 } });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    const cut = ' [cut at 36864 characters]';
    expect(r.lines.map((l) => [l.level, l.text.length, l.text.slice(0, 1), l.text.endsWith(cut)])).toEqual([
      ['INFO', 36864 + 1 + cut.length, 'p', true],
      ['INFO', 36864 + 1 + cut.length, 'l', true],
    ]);
  }, 60_000);

  it('takes output without line ends in time linear in its length, keeping 36 KiB of the line', async () => {
    // 300,000 writes of a counter rewritten with '\r' (a progress display): each write was
    // copied onto and searched with all the line before it.
    const main = ['import sys', 'def run(params, logger):', '    for i in range(300000):', '        sys.stdout.write("\\r%d" % i)', '    print()', '    return "OK"'].join('\n');
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]!.text.startsWith('\r0\r1\r2')).toBe(true);
    expect(r.lines[0]!.text.length).toBeLessThanOrEqual(36864 + 1 + ' [cut at 36864 characters]'.length);
  }, 60_000);

  it('keeps output written straight to the descriptors (subprocesses, C code)', async () => {
    const main = 'import subprocess, sys\ndef run(params, logger):\n    subprocess.run(["echo", "from a subprocess"], stdout=sys.stdout)\n    return "OK"\n';
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    expect(r.lines).toContainEqual({ level: 'INFO', text: 'from a subprocess' });
  }, 30_000);

  it('enforces the memory limit', async () => {
    const main = 'def run(params, logger):\n    block = bytearray(600 * 1024 * 1024)\n    return len(block)\n';
    const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, { limits: { memoryBytes: 256 * 1024 ** 2 } });
    expect(r.outcome).toEqual({ kind: 'failed', message: 'MemoryError' });
  }, 30_000);

  (isRoot ? describe : describe.skip)('sandbox', () => {
    it('runs as an unprivileged user with a scrubbed environment', async () => {
      const main = [
        'import os',
        'def run(params, logger):',
        '    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(), "env": dict(os.environ), "cwd": os.getcwd()}',
      ].join('\n');
      process.env['GEF_SECRET_FOR_TEST'] = 'must not leak';
      const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
      delete process.env['GEF_SECRET_FOR_TEST'];
      expect(r.forked).toBe(forked);
      expect(r.outcome.kind).toBe('result');
      const result = JSON.parse((r.outcome as { resultJson: string }).resultJson) as { uid: number; euid: number; gid: number; groups: number[]; env: Record<string, string>; cwd: string };
      expect(result.uid).toBe(r.uid);
      expect(result.euid).toBe(r.uid);
      expect(result.uid).toBeGreaterThanOrEqual(910_000);
      expect(result.gid).toBe(r.uid);
      expect(result.groups).toEqual([]);
      expect(Object.keys(result.env).sort()).toEqual(['API_TOKEN', 'API_URL', 'ENV', 'EXECUTION_ID', 'HOME', 'LANG', 'PATH']);
      expect(result.cwd).toBe(r.dir);
      expect(result.env['HOME']).toBe(r.dir);
    }, 30_000);

    it('cannot read secrets, the runner\'s files or other runs', async () => {
      const main = [
        'import os',
        'def attempt(path):',
        '    try:',
        '        with open(path, "rb") as f:',
        '            f.read(1)',
        '        return "read"',
        '    except OSError as e:',
        '        return type(e).__name__',
        'def listing(path):',
        '    try:',
        '        os.listdir(path)',
        '        return "listed"',
        '    except OSError as e:',
        '        return type(e).__name__',
        'def run(params, logger):',
        '    return {',
        '        "shadow": attempt("/etc/shadow"),',
        `        "runner_environ": attempt("/proc/${process.pid}/environ"),`,
        `        "archives": listing(${JSON.stringify(fixture.dirs.archives)}),`,
        `        "work": listing(${JSON.stringify(fixture.dirs.work)}),`,
        `        "locks": listing(${JSON.stringify(fixture.dirs.uids)}),`,
        '        "root_home": listing("/root"),',
        '    }',
      ].join('\n');
      const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
      expect(r.outcome.kind).toBe('result');
      expect(JSON.parse((r.outcome as { resultJson: string }).resultJson)).toEqual({
        shadow: 'PermissionError',
        // Not there at all in a /proc of the run's own; unreadable in the machine's.
        runner_environ: fixture.privateProc ? 'FileNotFoundError' : 'PermissionError',
        archives: 'PermissionError',
        work: 'PermissionError',
        locks: 'PermissionError',
        root_home: 'PermissionError',
      });
    }, 30_000);

    it('sees only its own processes in /proc, children included, and none of the machine’s', async () => {
      if (!fixture.privateProc) throw new Error('this machine cannot give a run a /proc of its own (CAP_SYS_ADMIN, Linux 5.8)');
      const main = [
        'import os, subprocess',
        'def run(params, logger):',
        '    child = subprocess.Popen(["sleep", "30"])',
        '    try:',
        '        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())',
        '        owners = sorted({os.stat("/proc/%d" % p).st_uid for p in pids})',
        '        try:',
        `            open("/proc/${process.pid}/cmdline").read()`,
        '            runner = "read"',
        '        except OSError as e:',
        '            runner = type(e).__name__',
        '        return {"pids": pids, "owners": owners, "me": os.getpid(), "child": child.pid, "uid": os.getuid(), "runner": runner}',
        '    finally:',
        '        child.kill()',
      ].join('\n');
      const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
      expect(r.outcome.kind).toBe('result');
      const seen = JSON.parse((r.outcome as { resultJson: string }).resultJson) as { pids: number[]; owners: number[]; me: number; child: number; uid: number; runner: string };
      expect(seen.pids).toEqual(expect.arrayContaining([seen.me, seen.child]));
      expect(seen.pids).not.toContain(process.pid);
      expect(seen.pids).not.toContain(1);
      expect(seen.owners).toEqual([seen.uid]);
      expect(seen.runner).toBe('FileNotFoundError');
      // The machine's /proc is untouched: the runner still sees everything.
      expect(fs.existsSync('/proc/1')).toBe(true);
    }, 30_000);

    it('leaves nothing behind: escaped processes, temporary files and the run directory go', async () => {
      const main = [
        'import subprocess, tempfile',
        'def run(params, logger):',
        '    subprocess.Popen(["setsid", "sleep", "120"], start_new_session=True)',
        '    fd, path = tempfile.mkstemp(prefix="gef-left-")',
        '    return path',
      ].join('\n');
      const r = await fixture.run({ 'configuration.json': configuration, 'src/main.py': main });
      expect(r.outcome.kind).toBe('result');
      const left = JSON.parse((r.outcome as { resultJson: string }).resultJson) as string;
      expect(fs.existsSync(left)).toBe(false);
      expect(fs.existsSync(r.dir)).toBe(false);
      expect(processesOf(r.uid!)).toEqual([]);
    }, 30_000);

    it('sweeps what the runs of a runner that died left behind', async () => {
      const uid = 910_049;
      // A lock of a dead runner process, a process and a run directory of that uid.
      fs.writeFileSync(`${fixture.dirs.uids}/${uid}`, '999999');
      const orphan = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'sleep', '60'], { detached: true, stdio: 'ignore' });
      orphan.unref();
      const dir = `${fixture.dirs.work}/left-behind`;
      fs.mkdirSync(dir);
      fs.chownSync(dir, uid, uid);
      for (let i = 0; i < 100 && processesOf(uid).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(processesOf(uid)).toHaveLength(1);
      expect(await fixture.sandbox.sweep()).toBe(2);
      expect(processesOf(uid)).toEqual([]);
      expect(fs.existsSync(dir)).toBe(false);
      expect(fs.existsSync(`${fixture.dirs.uids}/${uid}`)).toBe(false);
    }, 30_000);
  });
});
