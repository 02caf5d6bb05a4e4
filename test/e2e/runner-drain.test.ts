/**
 * A runner asked to stop, against the real stack (RUNNER_DRAIN_SECONDS is 10 in the test
 * stack): it takes no more runs, a run it holds that ends within the drain FINISHES on its
 * first attempt, one still running after it is stopped with lines saying so and what follows,
 * and FINISHES on another attempt once a runner is back; a run submitted meanwhile waits READY.
 */
import { randomBytes } from 'node:crypto';
import { readStackInfo, startPart, stopPart } from '../harness/stack';
import { counterValue, newUser } from './helpers/api';
import { executionLog, gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from './helpers/executions';
import { eventually } from './helpers/wait';

jest.setTimeout(300_000);

const runnersOnline = () => counterValue('gef_runners_online', 'service="execution"', `http://127.0.0.1:${readStackInfo().env.execution['METRICS_PORT']}`);
const stopping = 'This runner is stopping: stopping the script (SIGTERM, then SIGKILL after 5 s)';

let runnerStopped = false;
const gates: Gate[] = [];

afterAll(async () => {
  for (const g of gates) g.open();
  if (runnerStopped) await startPart('runner');
  for (const g of gates) g.remove();
});

function newGate(): Gate {
  const g = gate();
  gates.push(g);
  return g;
}

describe('a runner asked to stop', () => {
  it('lets its runs end within the drain, stops those left for another attempt, and takes no new ones', async () => {
    const owner = await newUser('drain-owner');
    const script = await publishScript(
      owner.token,
      `Drain ${randomBytes(4).toString('hex')}`,
      `${pythonGate}\ndef run(params, logger):\n    logger.info("started")\n    wait_gate(params)\n    logger.info("done")\n    return "ok"\n`,
    );
    // Exactly the stack's runner: one killed by an earlier file still counts for up to 45 s
    // after its last report, and would keep the count above 0 past this runner's drain.
    await eventually(async () => (await runnersOnline()) === 1, 60_000, 'only the stack runner online');
    const [soon, late, meanwhile] = [newGate(), newGate(), newGate()];
    meanwhile.open();
    const ending = await runScript(owner.token, script.slug, { body: { gate: soon.path } });
    const outlasting = await runScript(owner.token, script.slug, { body: { gate: late.path } });
    for (const run of [ending, outlasting]) await waitForLog(owner.token, run.id, (ls) => ls.some((l) => l.text === 'started'));

    const stopped = stopPart('runner');
    runnerStopped = true;
    // The runner says it is stopping first: from then on it takes nothing new.
    await eventually(async () => (await runnersOnline()) === 0, 30_000, 'no runner online');
    // The run ending within the drain is let go first: its 10 s count from the stop.
    soon.open();
    const waiting = await runScript(owner.token, script.slug, { body: { gate: meanwhile.path } });
    expect((await waitForExecution(owner.token, ending.id, ['FINISHED', 'FAILED', 'CANCELLED'], 30_000)).status).toBe('FINISHED');
    await stopped;

    const ended = (await executionLog(owner.token, ending.id)).map((l) => l.text);
    expect(ended.filter((t) => /^Attempt \d+ started on runner /.test(t))).toEqual([expect.stringMatching(/^Attempt 1 started/)]);
    expect(ended).toEqual(expect.arrayContaining(['started', 'done']));
    expect(ended).not.toContain(stopping);
    // Past the drain: stopped, with its last lines, and handed back for another attempt.
    const handedBack = await waitForLog(owner.token, outlasting.id, (ls) => ls.some((l) => l.text.startsWith('The run starts again')), 30_000);
    expect(handedBack.map((l) => l.text).slice(-3)).toEqual([stopping, 'The script stopped', expect.stringMatching(/^The run starts again when a runner takes it \(attempt 2 of \d+\)$/)]);
    expect((await waitForExecution(owner.token, waiting.id, ['READY'], 1000)).status).toBe('READY');
    expect((await executionLog(owner.token, waiting.id)).map((l) => l.text)).not.toContain('started');

    late.open();
    await startPart('runner');
    runnerStopped = false;
    expect((await waitForExecution(owner.token, outlasting.id)).status).toBe('FINISHED');
    const retried = (await executionLog(owner.token, outlasting.id)).map((l) => l.text);
    expect(retried.filter((t) => /^Attempt \d+ started on runner /.test(t)).map((t) => t.split(' ')[1])).toEqual(['1', '2']);
    expect(retried.filter((t) => t === 'done')).toHaveLength(1);
    expect((await waitForExecution(owner.token, waiting.id)).status).toBe('FINISHED');
    const later = (await executionLog(owner.token, waiting.id)).map((l) => l.text);
    expect(later.filter((t) => /^Attempt \d+ started on runner /.test(t))).toEqual([expect.stringMatching(/^Attempt 1 started/)]);
  });
});
