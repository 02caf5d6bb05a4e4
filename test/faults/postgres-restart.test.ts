/**
 * Issue 6, faults: a restart of PostgreSQL during a mixed load (logins, uploads, runs, log
 * appends). While it is down the API answers 503 with the contract's error body, never 500
 * and never a dropped connection; within 10 s of its return /api-health is 200 again and
 * every kind of request succeeds; no write the API accepted (200) is lost.
 */
import { randomBytes } from 'node:crypto';
import { api, login, newUser, superadminCredentials } from '../e2e/helpers/api';
import { waitForStatus } from '../e2e/helpers/archives';
import { executionLog, gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from '../e2e/helpers/executions';
import { eventually, expectErrorBody, healthStatus, Outages, sleep } from './helpers';
import { MixedLoad, type OpKind } from './load';

jest.setTimeout(600_000);

const kinds: OpKind[] = ['login', 'upload', 'run', 'log'];
const outages = new Outages();
let held: Gate | undefined;
let load: MixedLoad | undefined;

afterAll(async () => {
  await load?.stop();
  held?.open();
  await outages.restore();
  held?.remove();
});

describe('a restart of PostgreSQL under a mixed load', () => {
  it('answers 503 while it is down, recovers within 10 s of its return and loses no accepted write', async () => {
    const tag = randomBytes(4).toString('hex');
    const owner = await newUser('fault-pg');
    const admin = await login(superadminCredentials().email, superadminCredentials().password);
    const fast = await publishScript(owner.token, `Fault PG Fast ${tag}`, 'def run(params, logger):\n    logger.info("ran")\n    return params.get("n")\n');
    // An execution held running, which the admin appends lines to.
    const holder = await publishScript(admin.access_token, `Fault PG Held ${tag}`, `${pythonGate}\ndef run(params, logger):\n    logger.info("begin")\n    wait_gate(params)\n    return "held"\n`);
    held = gate();
    const heldRun = await runScript(admin.access_token, holder.slug, { body: { gate: held.path } });
    await waitForLog(admin.access_token, heldRun.id, (l) => l.some((x) => x.text === 'begin'));

    load = new MixedLoad({ email: owner.email, password: owner.password, token: owner.token, scriptSlug: fast.slug, adminToken: admin.access_token, logExecutionId: heldRun.id });
    const began = Date.now();
    load.start(4);
    // Every kind works before the fault.
    await eventually(async () => kinds.every((k) => load!.since(began, k).some((a) => a.status === 200)), 60_000, 'every kind of request succeeding before the restart');

    const stoppedAt = Date.now();
    await outages.stop('postgres');
    const downFrom = Date.now();
    await eventually(async () => (await healthStatus()) === 503, 30_000, '/api-health 503 while PostgreSQL is down');
    await sleep(4000);
    await outages.start('postgres');
    const back = Date.now();

    // Within 10 s of its return: healthy, and each kind of request succeeds again.
    await eventually(async () => (await healthStatus()) === 200, 10_000, '/api-health 200 within 10 s of PostgreSQL returning');
    const firstOk = await eventually(
      async () => {
        const ok = kinds.map((k) => load!.since(back, k).find((a) => a.status === 200)?.at);
        return ok.every((t) => t !== undefined) ? (ok as number[]) : undefined;
      },
      20_000,
      'every kind of request succeeding after PostgreSQL returned',
    );
    expect(Object.fromEntries(kinds.map((k, i) => [k, firstOk[i]! - back <= 10_000]))).toEqual({ login: true, upload: true, run: true, log: true });
    await sleep(2000);
    await load.stop();

    // While it was down (and until it is back): 200 or the contract's 503, nothing else.
    const during = load.since(stoppedAt).filter((a) => a.at <= back + 10_000);
    const wrong = during.filter((a) => a.status !== 200 && a.status !== 503);
    expect(wrong).toEqual([]);
    for (const a of during.filter((x) => x.status === 503)) expectErrorBody({ status: a.status, text: a.text, body: JSON.parse(a.text), headers: new Headers() }, 503);
    // Writes really were refused while it was down (the fault happened).
    expect(load.since(downFrom).filter((a) => a.at < back && a.status === 503).length).toBeGreaterThan(0);
    // After the recovery bound, everything succeeds.
    expect(load.since(back + 10_000).filter((a) => a.status !== 200)).toEqual([]);

    // No accepted write lost.
    held.open();
    expect((await waitForExecution(admin.access_token, heldRun.id)).status).toBe('FINISHED');
    const log = await executionLog(admin.access_token, heldRun.id);
    for (const text of load.acceptedLines) expect({ text, times: log.filter((l) => l.text === text).length }).toEqual({ text, times: 1 });
    for (const id of load.acceptedRuns) {
      const done = await waitForExecution(owner.token, id, ['FINISHED', 'FAILED', 'CANCELLED'], 240_000);
      const why = done.status === 'FINISHED' ? [] : (await executionLog(owner.token, id)).map((l) => `${l.attempt} ${l.level} ${l.text}`);
      expect({ id, status: done.status, why }).toEqual({ id, status: 'FINISHED', why: [] });
    }
    for (const id of load.acceptedUploads) {
      const { script } = await waitForStatus(owner.token, id, ['SUCCESS', 'FAIL'], 240_000);
      expect({ id, status: script.status }).toEqual({ id, status: 'SUCCESS' });
    }
    const listed = await api('GET', '/api/v1/execution/user?per_page=100', { token: owner.token });
    expect(listed.status).toBe(200);
  });
});
