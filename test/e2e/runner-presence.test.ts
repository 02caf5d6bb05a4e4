/**
 * Runners online, against the real stack: with no runner online, a run handed to the runners
 * says so in its log and waits READY; once a runner is back it runs and FINISHES. A run
 * handed to them while one is online says nothing of the kind.
 */
import { randomBytes } from 'node:crypto';
import { readStackInfo, startPart, stopPart } from '../harness/stack';
import { counterValue, newUser } from './helpers/api';
import { executionLog, publishScript, runScript, waitForExecution, waitForLog } from './helpers/executions';
import { eventually } from './helpers/wait';

jest.setTimeout(300_000);

const noRunner = 'No runner is online: the run starts when one is';
const runnersOnline = () => counterValue('gef_runners_online', 'service="execution"', `http://127.0.0.1:${readStackInfo().env.execution['METRICS_PORT']}`);

let runnerStopped = false;

afterAll(async () => {
  if (runnerStopped) await startPart('runner');
});

describe('a run while no runner is online', () => {
  it('says so in its log, waits READY, and runs once a runner is back', async () => {
    const owner = await newUser('presence-owner');
    const script = await publishScript(owner.token, `Presence ${randomBytes(4).toString('hex')}`, 'def run(params, logger):\n    logger.info("ran")\n    return "ok"\n');
    await eventually(async () => (await runnersOnline()) >= 1, 30_000, 'the runner online');

    // Stopped, the runner says so as it goes; one killed by an earlier file counts until its
    // reports are 45 s old.
    await stopPart('runner');
    runnerStopped = true;
    await eventually(async () => (await runnersOnline()) === 0, 90_000, 'no runner online');
    const waiting = await runScript(owner.token, script.slug);
    const lines = await waitForLog(owner.token, waiting.id, (ls) => ls.some((l) => l.text === noRunner), 30_000);
    expect(lines).toEqual([expect.objectContaining({ level: 'WARNING', text: noRunner })]);
    expect((await waitForExecution(owner.token, waiting.id, ['READY'], 30_000)).status).toBe('READY');

    await startPart('runner');
    runnerStopped = false;
    expect((await waitForExecution(owner.token, waiting.id)).status).toBe('FINISHED');
    const texts = (await executionLog(owner.token, waiting.id)).map((l) => l.text);
    expect(texts[0]).toBe(noRunner);
    expect(texts[1]).toMatch(/^Attempt 1 started on runner /);
    expect(texts).toContain('ran');
    expect(texts.filter((t) => t === noRunner)).toHaveLength(1);

    // With the runner online again, a run says nothing of the kind.
    await eventually(async () => (await runnersOnline()) >= 1, 30_000, 'the runner online again');
    const next = await runScript(owner.token, script.slug);
    expect((await waitForExecution(owner.token, next.id)).status).toBe('FINISHED');
    expect((await executionLog(owner.token, next.id)).map((l) => l.text)).not.toContain(noRunner);
  });
});
