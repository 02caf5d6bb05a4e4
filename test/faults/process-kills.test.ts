/**
 * Issue 6, faults: SIGKILL of each service process and of the gateway in turn, under a light
 * mixed load (logins, uploads, runs, log appends). While a part is dead clients see 503s
 * with the contract's body (or, for the gateway itself, connection errors), never a 500;
 * once it is restarted every kind of request succeeds again; no execution or script is left
 * in a state that never ends.
 */
import { randomBytes } from 'node:crypto';
import type { PartName } from '../harness/stack';
import { api, login, newUser, superadminCredentials } from '../e2e/helpers/api';
import { waitForStatus } from '../e2e/helpers/archives';
import { executionLog, gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from '../e2e/helpers/executions';
import { eventually, expectErrorBody, Outages, sleep } from './helpers';
import { MixedLoad, type OpKind } from './load';

jest.setTimeout(900_000);

const kinds: OpKind[] = ['login', 'upload', 'run', 'log'];
// FAULT_PARTS=script,gateway narrows the parts killed (while working on one).
const parts = (process.env.FAULT_PARTS?.split(',') ?? ['user', 'script', 'execution', 'gateway']) as PartName[];
const outages = new Outages();
const gates: Gate[] = [];
let load: MixedLoad | undefined;

afterAll(async () => {
  await load?.stop();
  await outages.restore();
  for (const g of gates) {
    g.open();
    g.remove();
  }
});

describe('SIGKILL of a service or the gateway under load', () => {
  let owner: Awaited<ReturnType<typeof newUser>>;
  let adminToken: string;
  let fastSlug: string;
  let heldSlug: string;
  const allRuns: string[] = [];
  const heldRuns: { id: string; gate: Gate }[] = [];
  const allUploads: string[] = [];

  beforeAll(async () => {
    const tag = randomBytes(4).toString('hex');
    owner = await newUser('fault-kill');
    adminToken = (await login(superadminCredentials().email, superadminCredentials().password)).access_token;
    fastSlug = (await publishScript(owner.token, `Fault Kill Fast ${tag}`, 'def run(params, logger):\n    logger.info("ran")\n    return params.get("n")\n')).slug;
    heldSlug = (await publishScript(adminToken, `Fault Kill Held ${tag}`, `${pythonGate}\ndef run(params, logger):\n    logger.info("begin")\n    wait_gate(params)\n    logger.info("end")\n    return "held"\n`)).slug;
  });

  it.each(parts)('%s: 503s while it is dead, every kind of request succeeds once it is back', async (part) => {
    // A run held running through the kill, which the admin appends lines to.
    const g = gate();
    gates.push(g);
    const held = await runScript(adminToken, heldSlug, { body: { gate: g.path } });
    heldRuns.push({ id: held.id, gate: g });
    await waitForLog(adminToken, held.id, (l) => l.some((x) => x.text === 'begin'));

    load = new MixedLoad({ email: owner.email, password: owner.password, token: owner.token, scriptSlug: fastSlug, adminToken, logExecutionId: held.id }, 100);
    const began = Date.now();
    load.start(4);
    await eventually(async () => kinds.every((k) => load!.since(began, k).some((a) => a.status === 200)), 60_000, `every kind of request succeeding before ${part} is killed`);

    const killedAt = Date.now();
    await outages.kill(part);
    await sleep(3000);
    const whileDead = load.since(killedAt);
    await outages.start(part);
    const back = Date.now();
    // Every kind succeeds again after the restart (clients retrying).
    await eventually(async () => kinds.every((k) => load!.since(back, k).some((a) => a.status === 200)), 60_000, `every kind of request succeeding after ${part} restarted`);
    await load.stop();
    allRuns.push(...load.acceptedRuns);
    allUploads.push(...load.acceptedUploads);

    const answers = load.since(killedAt);
    // Never a 500 or anything but success, the contract's 503, or (the gateway itself) no answer.
    const allowed = (status: number) => status === 200 || status === 503 || (part === 'gateway' && status === 0);
    expect(answers.filter((a) => !allowed(a.status))).toEqual([]);
    for (const a of answers.filter((x) => x.status === 503)) expectErrorBody({ status: 503, text: a.text, body: JSON.parse(a.text), headers: new Headers() }, 503);
    // The kill was felt.
    expect(whileDead.some((a) => a.status !== 200)).toBe(true);
    g.open();
  });

  it('leaves no execution or script in a state that never ends', async () => {
    const ended = async (token: string, id: string) => {
      const done = await waitForExecution(token, id, ['FINISHED', 'FAILED', 'CANCELLED'], 240_000);
      const why = done.status === 'FINISHED' ? [] : (await executionLog(token, id)).map((l) => `${l.attempt} ${l.level} ${l.text}`);
      return { id, status: done.status, why };
    };
    for (const { id } of heldRuns) expect(await ended(adminToken, id)).toEqual({ id, status: 'FINISHED', why: [] });
    for (const id of allRuns) expect(await ended(owner.token, id)).toEqual({ id, status: 'FINISHED', why: [] });
    for (const id of allUploads) {
      const { script } = await waitForStatus(owner.token, id, ['SUCCESS', 'FAIL'], 240_000);
      expect({ id, status: script.status }).toEqual({ id, status: 'SUCCESS' });
    }
    // Including what the load sent that was cut off by a kill: everything the owner has ends.
    await eventually(
      async () => {
        for (const status of ['PENDING', 'READY', 'RUNNING', 'CANCELLING']) {
          const res = await api('GET', `/api/v1/execution/user?status=${status}&per_page=1`, { token: owner.token });
          if (res.status !== 200 || res.body.total !== 0) return false;
        }
        for (const status of ['PENDING', 'BUILDING']) {
          const res = await api('GET', `/api/v1/script?filter=${encodeURIComponent(`status=${status}`)}&per_page=1`, { token: owner.token });
          if (res.status !== 200 || res.body.total !== 0) return false;
        }
        return true;
      },
      240_000,
      'every script and execution of the owner ending',
      1000,
    );
  });
});
