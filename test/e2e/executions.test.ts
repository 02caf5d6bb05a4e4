/**
 * CONTRACT §6 and §7 against the real stack: runs of Python scripts through Temporal and the
 * runner's sandbox, their logs, progress, results, errors, timeouts, cancellation, the
 * per-user concurrency limit, visibility, execution tokens and the external-runtime routes.
 * Scripts that must be caught while running wait at a gate the test opens.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readStackInfo, runningParts } from '../harness/stack';
import { api, counterValue, login, newUser, strongPassword, superadminCredentials, uniqueEmail } from './helpers/api';
import { cliArchive, upload, waitForStatus } from './helpers/archives';
import { EventStream, executionLog, gate, logEvents, publishScript, pythonApiCall, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from './helpers/executions';

jest.setTimeout(300_000);

type Account = { id: string; token: string; email: string };
let owner: Account;
let other: Account;
let admin: Account & { password: string };

const unique = () => randomBytes(4).toString('hex');
const apiDatePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;
const gates: Gate[] = [];
const newGate = () => {
  const g = gate();
  gates.push(g);
  return g;
};

const gatedMain = `${pythonGate}
def run(params, logger):
    logger.info("waiting at the gate")
    wait_gate(params)
    logger.info("through the gate")
    return "gated"
`;

let skeleton: { id: string; slug: string };
let gated: { id: string; slug: string };

beforeAll(async () => {
  const superadmin = superadminCredentials();
  const superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
  const email = uniqueEmail('exec-admin');
  const created = await api('POST', '/api/v1/user', { token: superToken, body: { email, name: 'Execution Admin', password: strongPassword, role: 'ADMIN' } });
  expect(created.status).toBe(200);
  admin = { id: created.body.data.id, email, password: strongPassword, token: (await login(email, strongPassword)).access_token };
  [owner, other] = await Promise.all([newUser('exec-owner'), newUser('exec-other')]);
  [skeleton, gated] = await Promise.all([
    publishScript(owner.token, `Exec Skeleton ${unique()}`, 'def run(params, logger):\n    return "OK"\n'),
    publishScript(owner.token, `Exec Gated ${unique()}`, gatedMain),
  ]);
});

afterAll(() => {
  for (const g of gates) {
    g.open();
  }
  // Scripts still waiting go through; the directories go with the machine's temp cleanup.
});

describe('a run of the Trends.Earth CLI skeleton', () => {
  let executionId: string;

  it('is accepted PENDING and runs to FINISHED with "OK"', async () => {
    const created = await runScript(owner.token, skeleton.slug);
    expect(created).toMatchObject({ script_id: skeleton.id, user_id: owner.id, status: 'PENDING', progress: 0, params: {}, results: null, end_date: null, script_version: 1 });
    expect(created.start_date).toMatch(apiDatePattern);
    expect(created).not.toHaveProperty('workflow_id');
    executionId = created.id;
    const done = await waitForExecution(owner.token, executionId);
    expect(done).toMatchObject({ status: 'FINISHED', results: 'OK', progress: 100, attempt: 1 });
    expect(done.end_date).toMatch(apiDatePattern);
    const log = await executionLog(owner.token, executionId);
    expect(log.some((l) => /^Attempt 1 started/.test(l.text))).toBe(true);
    expect(log.every((l) => l.execution_id === executionId && apiDatePattern.test(l.register_date))).toBe(true);
    expect(log.map((l) => l.id)).toEqual([...log.map((l) => l.id)].sort((a, b) => a - b));
  });

  it("gets its workflow's first task in the answer to the workflow's start (eager start)", async () => {
    const eagerStarts = () => counterValue('gef_run_workflow_starts_total', 'first_task="eager"', `http://127.0.0.1:${readStackInfo().env.execution['METRICS_PORT']}`);
    // A start is queued instead when the service's worker has no workflow task slot free, or
    // is still reconnecting after an earlier file restarted Temporal: up to three runs.
    const before = await eagerStarts();
    for (let i = 0; i < 3 && (await eagerStarts()) === before; i++) {
      const created = await runScript(owner.token, skeleton.slug);
      expect((await waitForExecution(owner.token, created.id)).status).toBe('FINISHED');
    }
    expect(await eagerStarts()).toBeGreaterThan(before);
  });

  it('runs by id as it runs by slug', async () => {
    const byId = await runScript(owner.token, skeleton.id);
    expect(byId.script_id).toBe(skeleton.id);
    expect((await waitForExecution(owner.token, byId.id)).results).toBe('OK');
  });

  it('is visible to its owner and ADMIN, not to another user', async () => {
    const path = `/api/v1/execution/${executionId}`;
    expect((await api('GET', path, { token: owner.token })).status).toBe(200);
    const asAdmin = await api('GET', path, { token: admin.token });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.data.workflow_id).toBe(`execution-${executionId}`);
    const asOther = await api('GET', path, { token: other.token });
    expect(asOther.status).toBe(404);
    expect(asOther.body).toMatchObject({ status: 404, error: 'not_found' });

    for (const sub of ['/log', '/download-results', '/events']) {
      expect({ sub, status: (await api('GET', `${path}${sub}`, { token: other.token })).status }).toEqual({ sub, status: 404 });
    }
    expect((await api('GET', `${path}/log`, { token: admin.token })).status).toBe(200);

    const download = await api('GET', `${path}/download-results`, { token: owner.token });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toContain(`${executionId}.json`);
    expect(download.body).toBe('OK');
    expect((await api('GET', `${path}/download-results`, { token: admin.token })).body).toBe('OK');

    // Changing it: the owner sees it but may not (403), the other user does not see it (404).
    expect((await api('PATCH', path, { token: owner.token, body: { progress: 5 } })).status).toBe(403);
    expect((await api('PATCH', path, { token: other.token, body: { progress: 5 } })).status).toBe(404);
    expect((await api('POST', `${path}/log`, { token: owner.token, body: { text: 'x', level: 'INFO' } })).status).toBe(403);
    expect((await api('POST', `${path}/cancel`, { token: other.token })).status).toBe(404);
    // Terminal: cancel is a 400.
    expect((await api('POST', `${path}/cancel`, { token: owner.token })).status).toBe(400);
    expect((await api('GET', '/api/v1/execution/not-a-uuid', { token: owner.token })).status).toBe(404);
  });

  it('is listed for its owner and ADMIN with the contract parameters', async () => {
    const ownList = await api('GET', `/api/v1/execution?script_id=${skeleton.id}&status=finished&per_page=1&page=1`, { token: owner.token });
    expect(ownList.status).toBe(200);
    expect(ownList.body).toMatchObject({ page: 1, per_page: 1 });
    expect(ownList.body.total).toBeGreaterThanOrEqual(2);
    expect(ownList.body.data).toHaveLength(1);

    const mine = await api('GET', `/api/v1/execution/user?script_id=${skeleton.id}&include=script,user,logs&exclude=params,results&sort=start_date`, { token: owner.token });
    expect(mine.status).toBe(200);
    const first = mine.body.data.find((e: any) => e.id === executionId);
    expect(first).toMatchObject({ script: { id: skeleton.id, slug: skeleton.slug }, user: { id: owner.id } });
    expect(first.logs.length).toBeGreaterThan(0);
    expect(first).not.toHaveProperty('params');
    expect(first).not.toHaveProperty('results');

    const others = await api('GET', `/api/v1/execution?script_id=${skeleton.id}`, { token: other.token });
    expect(others.body).toMatchObject({ data: [], total: 0 });
    const narrowed = await api('GET', `/api/v1/execution?user_id=${owner.id}`, { token: other.token });
    expect(narrowed.body.data.some((e: any) => e.id === executionId)).toBe(false);

    const adminList = await api('GET', `/api/v1/execution?user_id=${owner.id}&script_id=${skeleton.id}`, { token: admin.token });
    expect(adminList.body.data.map((e: any) => e.id)).toContain(executionId);
    const adminOwn = await api('GET', `/api/v1/execution/user?script_id=${skeleton.id}`, { token: admin.token });
    expect(adminOwn.body).toMatchObject({ data: [], total: 0 });

    const future = await api('GET', `/api/v1/execution/user?updated_at=2999-01-01T00:00:00.000000+00:00`, { token: owner.token });
    expect(future.body).toMatchObject({ data: [], total: 0 });
    const past = await api('GET', `/api/v1/execution/user?updated_at=2000-01-01`, { token: owner.token });
    expect(past.body.total).toBeGreaterThanOrEqual(2);
    const filtered = await api('GET', `/api/v1/execution/user?filter=${encodeURIComponent(`script_id=${skeleton.id}`)}&sort=-start_date`, { token: owner.token });
    expect(filtered.body.data.map((e: any) => e.script_id)).toEqual(expect.arrayContaining([skeleton.id]));

    for (const bad of ['?status=DONE', '?filter=password%3Dx', '?updated_at=yesterday', '?include=secrets', '?per_page=0', '?bogus=1']) {
      expect({ bad, status: (await api('GET', `/api/v1/execution${bad}`, { token: owner.token })).status }).toEqual({ bad, status: 400 });
    }
  });
});

describe('what a script does becomes the log, progress and results', () => {
  it('keeps every log level, float progress, printed output and dict results', async () => {
    const script = await publishScript(
      owner.token,
      `Exec Progress ${unique()}`,
      `${pythonGate}
def run(params, logger):
    logger.debug("debug line")
    logger.info("info line")
    logger.warn("warn line")
    logger.warning("warning line")
    logger.error("error line")
    logger.critical("critical line")
    logger.send_progress(12.5)
    print("printed line")
    logger.send_progress(50.7)
    wait_gate(params)
    return {"sum": params["a"] + params["b"], "env": params["ENV"], "execution_id": params["EXECUTION_ID"], "nested": {"list": [1, 2.5, None, True]}}
`,
    );
    const g = newGate();
    const created = await runScript(owner.token, script.id, { body: { a: 2, b: 3.5, gate: g.path } });
    // While it waits at the gate, the float progress is there (rounded for the API).
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => l.text === 'printed line'));
    const running = await waitUntilProgress(created.id, 51);
    expect(running.status).toBe('RUNNING');
    g.open();
    const done = await waitForExecution(owner.token, created.id);
    expect(done).toMatchObject({ status: 'FINISHED', progress: 100, results: { sum: 5.5, env: expect.any(String), execution_id: created.id, nested: { list: [1, 2.5, null, true] } } });
    const lines = (await executionLog(owner.token, created.id)).map((l) => [l.level, l.text]);
    expect(lines).toEqual(
      expect.arrayContaining([
        ['DEBUG', 'debug line'],
        ['INFO', 'info line'],
        ['WARNING', 'warn line'],
        ['WARNING', 'warning line'],
        ['ERROR', 'error line'],
        ['CRITICAL', 'critical line'],
        ['INFO', 'printed line'],
      ]),
    );
    const texts = lines.map(([, t]) => t);
    expect(texts.indexOf('debug line')).toBeLessThan(texts.indexOf('critical line'));
    expect(texts.indexOf('critical line')).toBeLessThan(texts.indexOf('printed line'));
  });

  it('reads a long log in pages that end on whole instants: start= and last-id= miss no line, a first page holds at most 1,000', async () => {
    const script = await publishScript(
      owner.token,
      `Exec Long Log ${unique()}`,
      `def run(params, logger):
    for i in range(6000):
        logger.info("line %d" % i)
    return None
`,
    );
    const created = await runScript(owner.token, script.id);
    expect((await waitForExecution(owner.token, created.id)).status).toBe('FINISHED');
    const expected = Array.from({ length: 6000 }, (_, i) => `line ${i}`);
    const first = (await api('GET', `/api/v1/execution/${created.id}/log`, { token: owner.token })).body.data as { id: number; text: string; register_date: string }[];
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThanOrEqual(1000);
    // Lines come in batches sharing one register_date; polling by date, strictly after the
    // last line's, must still read each line once.
    const byDate = [...first];
    for (let page = first; page.length > 0; ) {
      const start = encodeURIComponent(page[page.length - 1]!.register_date);
      page = (await api('GET', `/api/v1/execution/${created.id}/log?start=${start}`, { token: owner.token })).body.data;
      byDate.push(...page);
    }
    expect(byDate.map((l) => l.text).filter((t) => t.startsWith('line '))).toEqual(expected);
    expect((await executionLog(owner.token, created.id)).map((l) => l.text).filter((t) => t.startsWith('line '))).toEqual(expected);
  });

  it('ends FAILED with the traceback when the script raises', async () => {
    const script = await publishScript(
      owner.token,
      `Exec Exception ${unique()}`,
      'def helper():\n    raise ValueError("boom from the script")\n\ndef run(params, logger):\n    logger.info("about to fail")\n    helper()\n',
    );
    const created = await runScript(owner.token, script.slug);
    const done = await waitForExecution(owner.token, created.id);
    expect(done.status).toBe('FAILED');
    expect(done.end_date).toMatch(apiDatePattern);
    const log = await executionLog(owner.token, created.id);
    const traceback = log.find((l) => l.level === 'ERROR' && l.text.includes('Traceback'));
    expect(traceback?.text).toContain('ValueError: boom from the script');
    expect(traceback?.text).toContain('helper');
  });

  it('ends FAILED with a line saying so when the result is not JSON', async () => {
    const script = await publishScript(owner.token, `Exec Not JSON ${unique()}`, 'def run(params, logger):\n    return {1, 2, 3}\n');
    const created = await runScript(owner.token, script.slug);
    const done = await waitForExecution(owner.token, created.id);
    expect(done).toMatchObject({ status: 'FAILED', results: null });
    const log = await executionLog(owner.token, created.id);
    expect(log.some((l) => l.level === 'ERROR' && /not JSON/.test(l.text))).toBe(true);
  });

  it("ends FAILED when the script runs past its configuration's timeout", async () => {
    const script = await publishScript(
      owner.token,
      `Exec Timeout ${unique()}`,
      'import time\n\ndef run(params, logger):\n    logger.info("sleeping")\n    time.sleep(600)\n    return "woke"\n',
      { timeout: 2 },
    );
    const created = await runScript(owner.token, script.slug);
    const done = await waitForExecution(owner.token, created.id);
    expect(done.status).toBe('FAILED');
    const log = await executionLog(owner.token, created.id);
    expect(log.some((l) => l.level === 'ERROR' && /exceeded its timeout of 2 s/.test(l.text))).toBe(true);
  });
});

/** Polls until the execution's progress is `progress` and returns it. */
async function waitUntilProgress(id: string, progress: number): Promise<any> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await api('GET', `/api/v1/execution/${id}`, { token: owner.token });
    if (res.body.data.progress === progress) return res.body.data;
    if (Date.now() > deadline) throw new Error(`progress stayed ${res.body.data.progress}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('run parameters', () => {
  let echo: { id: string; slug: string };
  beforeAll(async () => {
    echo = await publishScript(
      owner.token,
      `Exec Echo ${unique()}`,
      'def run(params, logger):\n    return {"params": {k: v for k, v in params.items() if k not in ("ENV", "EXECUTION_ID")}, "has_env": "ENV" in params, "execution_id": params.get("EXECUTION_ID")}\n',
      { params_schema: { type: 'object', properties: { year: { type: 'integer' } } } },
    );
  });

  it('merge the query string (as strings) with the JSON body, the body winning, without token', async () => {
    const created = await runScript(owner.token, echo.slug, { query: '?a=1&b=from-query&token=secret', body: { b: 2, c: [1, { d: null }], token: 'also-secret', year: 2001 } });
    const expected = { a: '1', b: 2, c: [1, { d: null }], year: 2001 };
    expect(created.params).toEqual(expected);
    const done = await waitForExecution(owner.token, created.id);
    expect(done.results).toEqual({ params: expected, has_env: true, execution_id: created.id });
  });

  it('are checked against params_schema; a body that is not an object is a 400', async () => {
    const bad = await api('POST', `/api/v1/script/${echo.slug}/run?year=2001`, { token: owner.token });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/year/);
    for (const body of [[1, 2], 'text', 42, null]) {
      const res = await api('POST', `/api/v1/script/${echo.slug}/run`, { token: owner.token, raw: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    // gzip bodies are read too.
    const zipped = await api('POST', `/api/v1/script/${echo.slug}/run`, { token: owner.token, body: { year: 1999 }, gzip: true });
    expect(zipped.status).toBe(200);
    expect(zipped.body.data.params).toEqual({ year: 1999 });
  });

  it('need a visible, built script', async () => {
    expect((await api('POST', `/api/v1/script/${echo.slug}/run`, { token: other.token })).status).toBe(404);
    expect((await api('POST', '/api/v1/script/no-such-script-anywhere/run', { token: owner.token })).status).toBe(404);
    // A blank key names no script either.
    expect((await api('POST', '/api/v1/script/%20/run', { token: owner.token })).status).toBe(404);
    expect((await api('POST', `/api/v1/script/${echo.slug}/run`)).status).toBe(401);
    const name = `Exec Broken Build ${unique()}`;
    const res = await upload(owner.token, cliArchive(name, { requirements: '=== not a requirement ===\n' }), `${name}.tar.gz`);
    expect(res.status).toBe(200);
    const built = await waitForStatus(owner.token, res.body.data.id, ['SUCCESS', 'FAIL'], 300_000);
    expect(built.script.status).toBe('FAIL');
    const refused = await api('POST', `/api/v1/script/${res.body.data.id}/run`, { token: owner.token });
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toMatch(/is not BUILT/);
  });
});

describe('the per-user limit and cancellation', () => {
  it('makes the fourth concurrent run of a USER wait, then run; a waiting run cancels at once', async () => {
    const user = await newUser('exec-queue');
    const script = await publishScript(user.token, `Exec Queue ${unique()}`, gatedMain);
    const g = newGate();
    const first = await Promise.all([1, 2, 3].map(() => runScript(user.token, script.slug, { body: { gate: g.path } })));
    await Promise.all(first.map((e) => waitForExecution(user.token, e.id, ['RUNNING'])));
    const fourth = await runScript(user.token, script.slug, { body: { gate: g.path } });
    const fifth = await runScript(user.token, script.slug, { body: { gate: g.path } });
    // Waiting for a slot: PENDING with queued_at, while the three run at the gate.
    const waiting = await waitFor(async () => {
      const e = (await api('GET', `/api/v1/execution/${fourth.id}`, { token: user.token })).body.data;
      return e.queued_at ? e : undefined;
    });
    expect(waiting).toMatchObject({ status: 'PENDING', attempt: 0 });
    expect(waiting.queued_at).toMatch(apiDatePattern);

    const cancelled = await api('POST', `/api/v1/execution/${fifth.id}/cancel`, { token: user.token });
    expect(cancelled.status).toBe(202);
    expect(cancelled.body.data.execution).toMatchObject({ id: fifth.id, status: 'CANCELLED' });
    expect(cancelled.body.data.execution.end_date).toMatch(apiDatePattern);
    expect(cancelled.body.data.cancellation_details).toMatchObject({ previous_status: 'PENDING', immediate: true, requested_by: user.id });

    for (const e of first) expect((await api('GET', `/api/v1/execution/${e.id}`, { token: user.token })).body.data.status).toBe('RUNNING');
    g.open();
    for (const e of [...first, fourth]) expect((await waitForExecution(user.token, e.id)).status).toBe('FINISHED');
    const fifthAfter = (await api('GET', `/api/v1/execution/${fifth.id}`, { token: user.token })).body.data;
    expect(fifthAfter).toMatchObject({ status: 'CANCELLED', attempt: 0 });
  });

  it('stops a running script: CANCELLING, then CANCELLED with log lines saying what happened', async () => {
    const g = newGate();
    const created = await runScript(owner.token, gated.slug, { body: { gate: g.path } });
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => l.text === 'waiting at the gate'));
    const res = await api('POST', `/api/v1/execution/${created.id}/cancel`, { token: owner.token });
    expect(res.status).toBe(202);
    expect(res.body.data.execution.status).toBe('CANCELLING');
    expect(res.body.data.cancellation_details).toMatchObject({ previous_status: 'RUNNING', immediate: false });
    const done = await waitForExecution(owner.token, created.id);
    expect(done.status).toBe('CANCELLED');
    expect(done.end_date).toMatch(apiDatePattern);
    const log = await executionLog(owner.token, created.id);
    expect(log.some((l) => /^Cancellation requested/.test(l.text))).toBe(true);
    expect(log.some((l) => l.text === 'through the gate')).toBe(false);
    expect((await api('POST', `/api/v1/execution/${created.id}/cancel`, { token: owner.token })).status).toBe(400);
  });
});

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the sandbox', () => {
  it('runs the script as an unprivileged user without the platform environment or files; API_TOKEN works on its own execution while it runs', async () => {
    const script = await publishScript(
      owner.token,
      `Exec Sandbox ${unique()}`,
      `import os, socket
${pythonApiCall}
def attempt(fn):
    try:
        fn()
        return "allowed"
    except Exception as e:
        return type(e).__name__

def run(params, logger):
    me = os.environ["EXECUTION_ID"]
    other = params["other"]
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "env": sorted(os.environ.keys()),
        "list_parent": attempt(lambda: os.listdir("..")),
        "list_archives": attempt(lambda: os.listdir(os.path.join("..", "..", "archives"))),
        "read_runner_config": attempt(lambda: open("/proc/%d/cmdline" % params["runner_pid"]).read() and open("/proc/%d/cwd/package.json" % params["runner_pid"]).read()),
        "runner_environ": attempt(lambda: open("/proc/%d/environ" % params["runner_pid"]).read()),
        "read_stack_file": attempt(lambda: open(params["stack_file"]).read()),
        "read_log_file": attempt(lambda: open(params["log_file"]).read()),
        "read_temporal_db": attempt(lambda: open(params["temporal_db"], "rb").read(16)),
        "list_data_dir": attempt(lambda: os.listdir(params["data_dir"])),
        "connect": {name: attempt(lambda p=port: socket.create_connection(("127.0.0.1", p), 5).close()) for name, port in params["ports"].items()},
        "patch_own": call("PATCH", "/api/v1/execution/" + me, {"progress": 42.5}),
        "log_own": call("POST", "/api/v1/execution/" + me + "/log", {"text": "from the script's token", "level": "warn"}),
        "read_own": call("GET", "/api/v1/execution/" + me),
        "patch_other": call("PATCH", "/api/v1/execution/" + other, {"progress": 1}),
        "log_other": call("POST", "/api/v1/execution/" + other + "/log", {"text": "x", "level": "INFO"}),
        "token": os.environ["API_TOKEN"],
    }
`,
    );
    const target = await runScript(owner.token, skeleton.slug);
    await waitForExecution(owner.token, target.id);
    const runnerPid = (await runningParts()).runner;
    expect(runnerPid).toBeDefined();
    // The stack's own files, which hold its settings and secrets: they exist, by these paths.
    const stack = readStackInfo();
    const privateFiles = {
      stack_file: process.env.GEF_TEST_STACK_FILE ?? join(stack.dataDir, 'stack.json'),
      log_file: join(stack.logDir, 'user.log'),
      temporal_db: join(stack.dataDir, 'temporal', 'temporal.db'),
      data_dir: stack.dataDir,
    };
    for (const path of Object.values(privateFiles)) expect({ path, exists: existsSync(path) }).toEqual({ path, exists: true });
    // The platform's own ports on this host: the database, Temporal, the services, Keycloak.
    const ports = { postgres: stack.ports['postgres'], temporal: stack.ports['temporal'], execution: stack.ports['execution'], user: stack.ports['user'], keycloak: stack.ports['keycloak'] };
    for (const [name, port] of Object.entries(ports)) expect({ name, port: typeof port }).toEqual({ name, port: 'number' });
    const created = await runScript(owner.token, script.slug, { body: { other: target.id, runner_pid: runnerPid, ports, ...privateFiles } });
    const done = await waitForExecution(owner.token, created.id);
    expect(done.status).toBe('FINISHED');
    const r = done.results;
    expect(r.uid).not.toBe(0);
    expect(r.euid).not.toBe(0);
    expect(r.gid).not.toBe(0);
    for (const key of r.env as string[]) expect({ key, allowed: /^(EXECUTION_ID|ENV|API_URL|API_TOKEN|PATH|HOME|LANG|LANGUAGE|LC_[A-Z]+)$/.test(key) }).toEqual({ key, allowed: true });
    expect(r.env).toEqual(expect.arrayContaining(['EXECUTION_ID', 'ENV', 'API_URL', 'API_TOKEN']));
    // The runner is not in the run's /proc at all (its command line, directory, environment).
    expect(r).toMatchObject({ list_parent: 'PermissionError', list_archives: 'PermissionError', read_runner_config: 'FileNotFoundError', runner_environ: 'FileNotFoundError' });
    expect(r).toMatchObject({ read_stack_file: 'PermissionError', read_log_file: 'PermissionError', read_temporal_db: 'PermissionError', list_data_dir: 'PermissionError' });
    // None of the platform's ports answers it; the API does (below).
    expect(r.connect).toEqual({ postgres: 'ConnectionRefusedError', temporal: 'ConnectionRefusedError', execution: 'ConnectionRefusedError', user: 'ConnectionRefusedError', keycloak: 'ConnectionRefusedError' });
    // Its token: its own execution's progress and log, nothing to read, nothing of another run.
    expect(r).toMatchObject({ patch_own: 200, log_own: 200, read_own: 401 });
    expect({ patch_other: r.patch_other, log_other: r.log_other }).toEqual({ patch_other: 404, log_other: 404 });
    const log = await executionLog(owner.token, created.id);
    expect(log.find((l) => l.text === "from the script's token")?.level).toBe('WARNING');
    expect((await api('GET', `/api/v1/execution/${target.id}`, { token: owner.token })).body.data.progress).toBe(100);

    // After the run the token is refused.
    const after = await api('PATCH', `/api/v1/execution/${created.id}`, { token: r.token, body: { progress: 3 } });
    expect(after.status).toBe(401);
    expect((await api('POST', `/api/v1/execution/${created.id}/log`, { token: r.token, body: { text: 'late', level: 'INFO' } })).status).toBe(401);
    // Nowhere else is it a credential.
    expect((await api('GET', '/api/v1/execution/user', { token: r.token })).status).toBe(401);
  });
});

describe('external runtimes (the Trends.Earth environment)', () => {
  it('log in as ADMIN and drive a run: RUNNING, a line of every level, float progress, results of any JSON type, FINISHED; the runner stops', async () => {
    const g = newGate();
    const created = await runScript(owner.token, gated.slug, { body: { gate: g.path } });
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => l.text === 'waiting at the gate'));
    // Runtimes log in before every call.
    const token = (await login(admin.email, admin.password)).access_token;
    const path = `/api/v1/execution/${created.id}`;
    expect((await api('PATCH', path, { token, body: { status: 'RUNNING' } })).body.data.status).toBe('RUNNING');
    for (const level of ['DEBUG', 'INFO', 'WARN', 'warning', 'ERROR', 'critical']) {
      const res = await api('POST', `${path}/log`, { token, body: { text: `external ${level}`, level }, gzip: level === 'INFO' });
      expect({ level, status: res.status }).toEqual({ level, status: 200 });
      expect(res.body.data).toMatchObject({ text: `external ${level}`, level: level.toUpperCase() === 'WARN' ? 'WARNING' : level.toUpperCase(), execution_id: created.id });
    }
    expect((await api('PATCH', path, { token, body: { progress: 33.3 } })).body.data.progress).toBe(33);
    expect((await api('PATCH', path, { token, body: { results: 'partial' } })).body.data.results).toBe('partial');
    expect((await api('PATCH', path, { token, body: { results: [1, 'two', null] }, gzip: true })).body.data.results).toEqual([1, 'two', null]);
    expect((await api('PATCH', path, { token, body: {} })).status).toBe(400);
    expect((await api('PATCH', path, { token, body: { progress: 101 } })).status).toBe(400);
    expect((await api('PATCH', path, { token, body: { status: 'DONE' } })).status).toBe(400);
    expect((await api('POST', `${path}/log`, { token, body: { text: 'no level' } })).status).toBe(400);
    expect((await api('POST', `${path}/log`, { token, body: { text: 'x', level: 'LOUD' } })).status).toBe(400);

    // A client following the run's events.
    const stream = await EventStream.open(`${path}/events`, { Authorization: `Bearer ${owner.token}` });
    expect(stream.status).toBe(200);
    const finished = await api('PATCH', path, { token, body: { status: 'FINISHED', results: { area_km2: 12.5, ok: true } } });
    expect(finished.status).toBe(200);
    expect(finished.body.data).toMatchObject({ status: 'FINISHED', progress: 100, results: { area_km2: 12.5, ok: true } });
    expect(finished.body.data.end_date).toMatch(apiDatePattern);
    // Terminal statuses are final; the same one again changes nothing.
    expect((await api('PATCH', path, { token, body: { status: 'FAILED' } })).status).toBe(409);
    const again = await api('PATCH', path, { token, body: { status: 'finished' } });
    expect(again.status).toBe(200);
    expect(again.body.data.end_date).toBe(finished.body.data.end_date);

    // The outside status wins: the runner stops the script and leaves the status alone.
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => /^The execution was ended from outside/.test(l.text)));
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => /^The script (stopped|did not stop)/.test(l.text)));
    g.open();
    const log = await executionLog(owner.token, created.id);
    expect(log.some((l) => l.text === 'through the gate')).toBe(false);
    expect(log.filter((l) => l.text.startsWith('external ')).map((l) => l.level)).toEqual(['DEBUG', 'INFO', 'WARNING', 'WARNING', 'ERROR', 'CRITICAL']);
    const after = await waitForExecution(owner.token, created.id);
    expect(after).toMatchObject({ status: 'FINISHED', results: { area_km2: 12.5, ok: true }, end_date: finished.body.data.end_date });
    // The stream ended after the runner's last lines, not at the status set from outside.
    const events = await stream.closed(30_000);
    expect(events.at(-1)?.event).toBe('end');
    expect(logEvents(events).map((l) => l.text)).toEqual(expect.arrayContaining([expect.stringMatching(/^The execution was ended from outside/), expect.stringMatching(/^The script (stopped|did not stop)/)]));
  });

  it('end a run FAILED the same way', async () => {
    const g = newGate();
    const created = await runScript(owner.token, gated.slug, { body: { gate: g.path } });
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => l.text === 'waiting at the gate'));
    const path = `/api/v1/execution/${created.id}`;
    expect((await api('POST', `${path}/log`, { token: admin.token, body: { text: 'the environment failed', level: 'ERROR' } })).status).toBe(200);
    const failed = await api('PATCH', path, { token: admin.token, body: { status: 'FAILED', progress: 40 } });
    expect(failed.body.data).toMatchObject({ status: 'FAILED', progress: 40 });
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => /^The script (stopped|did not stop)/.test(l.text)));
    g.open();
    expect(await waitForExecution(owner.token, created.id)).toMatchObject({ status: 'FAILED', progress: 40 });
    expect((await api('PATCH', path, { token: admin.token, body: { status: 'FINISHED' } })).status).toBe(409);
  });
});
