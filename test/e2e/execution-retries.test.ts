/**
 * CONTRACT §6 against the real stack: a runner killed with SIGKILL during a run. The run is
 * retried on another runner and FINISHES; its log holds each attempt's lines exactly once,
 * in order. Two runners serve the task queue here: the harness's and one started for this
 * file; whichever executes the run is the one killed.
 */
import { randomBytes } from 'node:crypto';
import { killPart, runningParts, startPart } from '../harness/stack';
import { newUser } from './helpers/api';
import { executionLog, gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from './helpers/executions';
import { runnerOf, startExtraRunner, type ExtraRunner } from './helpers/runners';

jest.setTimeout(420_000);

let extra: ExtraRunner;
let harnessRunnerKilled = false;
const gates: Gate[] = [];

beforeAll(async () => {
  extra = await startExtraRunner();
});

afterAll(async () => {
  for (const g of gates) g.open();
  await extra?.stop();
  if (harnessRunnerKilled) await startPart('runner');
});

describe('a runner killed during a run', () => {
  it('is replaced by another runner; the run FINISHES with each attempt’s lines once, in order', async () => {
    const owner = await newUser('retry-owner');
    const script = await publishScript(
      owner.token,
      `Exec Retry ${randomBytes(4).toString('hex')}`,
      `${pythonGate}
def run(params, logger):
    for i in range(1, 4):
        logger.info("step %d" % i)
    wait_gate(params)
    for i in range(4, 6):
        logger.info("step %d" % i)
    return "survived"
`,
    );
    const g = gate();
    gates.push(g);
    const created = await runScript(owner.token, script.slug, { body: { gate: g.path } });
    await waitForLog(owner.token, created.id, (lines) => lines.some((l) => l.text === 'step 3' && l.attempt === 1));

    const harnessPid = (await runningParts()).runner;
    expect(harnessPid).toBeDefined();
    const runners = [harnessPid!, extra.pid];
    let victim: number | undefined;
    for (let i = 0; i < 200 && victim === undefined; i++) {
      victim = runnerOf(created.id, runners);
      if (victim === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(victim).toBeDefined();
    if (victim === harnessPid) {
      harnessRunnerKilled = true;
      await killPart('runner');
    } else {
      await extra.kill();
    }
    // Attempt 2 runs straight through.
    g.open();

    const done = await waitForExecution(owner.token, created.id, ['FINISHED', 'FAILED', 'CANCELLED'], 300_000);
    expect(done).toMatchObject({ status: 'FINISHED', results: 'survived', attempt: 2 });
    const log = await executionLog(owner.token, created.id);
    const steps = (attempt: number) => log.filter((l) => l.attempt === attempt && /^step \d$/.test(l.text)).map((l) => l.text);
    expect(steps(1)).toEqual(['step 1', 'step 2', 'step 3']);
    expect(steps(2)).toEqual(['step 1', 'step 2', 'step 3', 'step 4', 'step 5']);
    // Oldest first: every line of attempt 1 before any of attempt 2.
    const lastOfFirst = Math.max(...log.filter((l) => l.attempt === 1).map((l) => l.id));
    const firstOfSecond = Math.min(...log.filter((l) => l.attempt === 2).map((l) => l.id));
    expect(lastOfFirst).toBeLessThan(firstOfSecond);
    expect(log.some((l) => /^Attempt 2 started/.test(l.text))).toBe(true);
    expect(new Set(log.map((l) => l.id)).size).toBe(log.length);
  });
});
