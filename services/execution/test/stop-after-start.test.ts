import { randomUUID } from 'node:crypto';
import type { RunExecutionInput, StopRequest } from '@gef/workflows';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import type { RunLauncher } from '../src/domain/run-launcher';
import { DispatchRepository } from '../src/repositories/dispatch-repository';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';

/**
 * Temporal as the dispatcher sees it: a stop told to a workflow that does not exist is
 * taken (as the real launcher takes Temporal's "not found"), and is lost for a workflow
 * started afterwards.
 */
class TemporalLike implements RunLauncher {
  down = false;
  readonly workflows = new Set<string>();
  /** What each workflow was told, in order: `start`, `stop`, or `lost` (a stop before its start). */
  readonly told: string[] = [];

  async start(run: RunExecutionInput): Promise<void> {
    if (this.down) throw new Error('Temporal is down');
    this.workflows.add(run.executionId);
    this.told.push(`start ${run.executionId}`);
  }

  async stop(executionId: string, _request: StopRequest): Promise<void> {
    if (this.down) throw new Error('Temporal is down');
    this.told.push(`${this.workflows.has(executionId) ? 'stop' : 'lost'} ${executionId}`);
  }

  async wake(executionId: string): Promise<void> {
    if (this.down) throw new Error('Temporal is down');
    this.told.push(`wake ${executionId}`);
  }
}

/**
 * After a Temporal outage the outbox holds a run's start and its stop (cancelled while
 * Temporal was away); the stop, having failed fewer times, may be due first. It must reach
 * the workflow: it waits for the start. Real PostgreSQL.
 */
describe('the outbox delivers a stop after its run\'s start', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;
  const temporal = new TemporalLike();

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_stop_after_start');
    f = await serviceFixture(pg.url, { launcher: temporal });
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const pending = () => new DispatchRepository().pending(f.orm.em.fork());

  it('holds a due stop while its start waits, then delivers it after the start', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    temporal.down = true;
    // Accepted with a free slot, then cancelled, while Temporal is away.
    const e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
    expect(await f.dispatch()).toBe(false);
    await f.client.cancelExecution({ id: e.id, caller: caller(userId) });
    await f.dispatch();
    temporal.down = false;
    // The start's next try comes later than the stop's.
    await f.orm.em.fork().execute('update execution_stop_dispatch set next_at = now() where execution_id = ?', [e.id]);
    await f.orm.em.fork().execute("update execution_dispatch set next_at = now() + interval '1 hour' where execution_id = ?", [e.id]);
    expect(await f.dispatch()).toBe(true);
    expect(temporal.told).toEqual([]);
    // The dispatcher's next wake-up is the start's, not the held stop's (no busy loop).
    const due = await new DispatchRepository().nextDue(f.orm.em.fork());
    expect(due!.getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);

    await f.orm.em.fork().execute('update execution_dispatch set next_at = now() where execution_id = ?', [e.id]);
    for (let pass = 0; pass < 5 && (await pending()) > 0; pass++) expect(await f.dispatch()).toBe(true);
    expect(await pending()).toBe(0);
    expect(temporal.told).toEqual([`start ${e.id}`, `stop ${e.id}`]);
  });

  it('delivers a stop at once when its run has no start waiting', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
    expect(await f.dispatch()).toBe(true);
    await f.client.cancelExecution({ id: e.id, caller: caller(userId) });
    expect(await f.dispatch()).toBe(true);
    expect(temporal.told.filter((t) => t.endsWith(e.id))).toEqual([`start ${e.id}`, `stop ${e.id}`]);
  });
});
