/**
 * Issue 6, faults: kill -9 of a runner during 20 running executions. Two runners serve the
 * task queue (the harness's and one started here); the one running the most of the 20 is
 * killed while they wait at a gate. All 20 end, FINISHED (the killed runner's on the other
 * runner, attempt 2 or later), and every attempt's lines are in the log exactly once, in
 * order.
 */
import { randomBytes } from 'node:crypto';
import { runningParts } from '../harness/stack';
import { login, superadminCredentials } from '../e2e/helpers/api';
import { executionLog, gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from '../e2e/helpers/executions';
import { runnerOf, startExtraRunner, type ExtraRunner } from '../e2e/helpers/runners';
import { eventually, expectAttemptsComplete, Outages } from './helpers';

jest.setTimeout(900_000);

let extra: ExtraRunner | undefined;
const outages = new Outages();
const gates: Gate[] = [];

afterAll(async () => {
  for (const g of gates) g.open();
  await extra?.stop();
  await outages.restore();
  for (const g of gates) g.remove();
});

const steps = ['step 1', 'step 2', 'step 3', 'step 4', 'step 5'];

describe('a runner killed during 20 running executions', () => {
  it('ends all 20 FINISHED, the killed ones retried on the other runner, each attempt’s lines once and in order', async () => {
    extra = await startExtraRunner('runner-fault');
    const { access_token: token } = await login(superadminCredentials().email, superadminCredentials().password);
    const script = await publishScript(
      token,
      `Fault Runner Kill ${randomBytes(4).toString('hex')}`,
      `${pythonGate}
def run(params, logger):
    for i in range(1, 4):
        logger.info("step %d" % i)
    wait_gate(params)
    for i in range(4, 6):
        logger.info("step %d" % i)
    return params["n"]
`,
    );
    const g = gate();
    gates.push(g);
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push((await runScript(token, script.slug, { body: { gate: g.path, n } })).id);

    const harnessPid = (await runningParts()).runner;
    expect(harnessPid).toBeDefined();
    const runners = [harnessPid!, extra.pid];
    // Every run the runners have room for is at the gate; find who runs which.
    const owners = await eventually(
      async () => {
        const running = await Promise.all(ids.map(async (id) => ((await executionLog(token, id)).some((l) => l.text === 'step 3') ? runnerOf(id, runners) : undefined)));
        const placed = running.filter((r) => r !== undefined);
        return placed.length >= Math.min(ids.length, 8) ? running : undefined;
      },
      180_000,
      'the runs reaching their gate',
      500,
    );
    const count = (pid: number) => owners.filter((o) => o === pid).length;
    const victim = count(harnessPid!) >= count(extra.pid) ? harnessPid! : extra.pid;
    const killedRuns = ids.filter((_, i) => owners[i] === victim);
    expect(killedRuns.length).toBeGreaterThan(0);
    if (victim === harnessPid) {
      await outages.kill('runner');
    } else {
      await extra.kill();
    }
    g.open();

    for (const [i, id] of ids.entries()) {
      const done = await waitForExecution(token, id, ['FINISHED', 'FAILED', 'CANCELLED'], 400_000);
      const log = await executionLog(token, id);
      const why = done.status === 'FINISHED' ? [] : log.map((l) => `${l.attempt} ${l.level} ${l.text}`);
      expect({ id, status: done.status, results: done.results, why }).toEqual({ id, status: 'FINISHED', results: i, why: [] });
      expectAttemptsComplete(log, steps);
      if (killedRuns.includes(id)) {
        expect(done.attempt).toBeGreaterThanOrEqual(2);
        expect(log.filter((l) => l.attempt === 1 && steps.includes(l.text)).map((l) => l.text)).toEqual(['step 1', 'step 2', 'step 3']);
      }
    }
    // Some killed run waited at its gate through the kill; the others were retried as well.
    await waitForLog(token, killedRuns[0]!, (l) => l.some((x) => x.attempt >= 2 && x.text === 'step 5'));
  });
});
