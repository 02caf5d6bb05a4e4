import { randomUUID } from 'node:crypto';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { ExecutionLogRepository, listStatement } from '../src/repositories/execution-log-repository';
import type { NewLogLine } from '../src/domain/log-lines';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';

const lines = (from: number, to: number): NewLogLine[] => Array.from({ length: to - from }, (_, i) => ({ seq: from + i, level: 'INFO', text: `line ${from + i}` }));

/**
 * Log appends against a real PostgreSQL: a batch goes in one statement without the per-line
 * conflict check, and again with it (after a savepoint) when one of its lines is stored
 * already; the execution is checked once per statement (no foreign key trigger per line).
 */
describe('execution log appends', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_log_append');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  async function newExecution(): Promise<string> {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1, public: true });
    const res = await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} });
    await f.dispatch();
    return res.execution!.id;
  }

  const stored = async (id: string) =>
    (await f.orm.em.fork().execute<{ attempt: number; seq: number; text: string }[]>('select attempt, seq, text from execution_log where execution_id = ? and seq >= 0 order by id', [id])).map(
      (r) => [Number(r.attempt), Number(r.seq), r.text],
    );

  it('stores every line once, in order, whatever overlaps a redelivered batch has', async () => {
    const id = await newExecution();
    const append = (batch: NewLogLine[], attempt = 1) => f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).appendCounted(id, attempt, batch));
    expect(await append(lines(0, 5000))).toBe(5000);
    // The same batch again, a batch overlapping its end, one inside it, and the next one.
    expect(await append(lines(0, 5000))).toBe(0);
    expect(await append(lines(4990, 5010))).toBe(10);
    expect(await append(lines(100, 101))).toBe(0);
    expect(await append(lines(5010, 6000))).toBe(990);
    // Another attempt numbers its lines from 0 again.
    expect(await append(lines(0, 3), 2)).toBe(3);
    const rows = await stored(id);
    expect(rows).toEqual([...lines(0, 6000).map((l) => [1, l.seq, l.text]), ...lines(0, 3).map((l) => [2, l.seq, l.text])]);
  }, 60_000);

  it('keeps every batch of a transaction when a later one is refused and goes in again', async () => {
    const id = await newExecution();
    const counts = await f.orm.em.fork().transactional(async (em) => {
      const repo = new ExecutionLogRepository(em);
      return [await repo.appendCounted(id, 1, lines(0, 100)), await repo.appendCounted(id, 1, lines(50, 200)), await repo.appendCounted(id, 1, lines(190, 210))];
    });
    expect(counts).toEqual([100, 100, 10]);
    expect((await stored(id)).map((r) => r[1])).toEqual(lines(0, 210).map((l) => l.seq));
  }, 60_000);

  it('reads an execution\'s first page through its own index, not past the lines of executions before it', async () => {
    const before = await newExecution();
    const id = await newExecution();
    await f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).appendCounted(before, 1, lines(0, 30_000)));
    await f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).appendCounted(id, 1, lines(0, 30_000)));
    await f.orm.em.fork().execute('analyze execution_log');
    for (const options of [{ limit: 1000 }, { limit: 1000, afterId: 1 }, { limit: 1000, after: new Date(0) }]) {
      const { sql, params } = listStatement(id, options);
      const plan = (await f.orm.em.fork().execute<Record<string, string>[]>(`explain (analyze, format text) ${sql}`, params)).map((r) => Object.values(r)[0]).join('\n');
      expect(plan).toMatch(/Index Cond: \(+execution_id = /);
      expect(plan).not.toMatch(/Rows Removed by Filter: [1-9]\d{3,}/);
    }
    const page = await new ExecutionLogRepository(f.orm.em.fork()).list(id, { limit: 1000 });
    expect(page.map((l) => l.seq)).toEqual(lines(0, 1000).map((l) => l.seq));
  }, 120_000);

  it('returns the stored lines of a batch (append), skipping those stored already', async () => {
    const id = await newExecution();
    const append = (batch: NewLogLine[]) => f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).append(id, 1, batch));
    expect((await append(lines(0, 3))).map((l) => l.seq)).toEqual([0, 1, 2]);
    expect((await append(lines(2, 5))).map((l) => l.seq)).toEqual([3, 4]);
    expect((await append([{ seq: null, level: 'WARNING', text: 'unnumbered' }])).map((l) => l.text)).toEqual(['unnumbered']);
  }, 60_000);

  it('dates each batch strictly after the log\'s last line, so polling with start= skips none', async () => {
    const id = await newExecution();
    // Batches far quicker than a millisecond apart, under the row lock as the service appends:
    // small ones (one statement, skipping stored lines), large ones (without the check), and a
    // redelivered one (refused, undone to the savepoint, in again).
    const sizes = Array.from({ length: 60 }, (_, b) => (b % 10 === 9 ? 40 : 1 + (b % 3)));
    await f.orm.em.fork().transactional(async (em) => {
      const repo = new ExecutionLogRepository(em);
      let seq = 0;
      for (const size of sizes) {
        await repo.appendCounted(id, 1, lines(seq, seq + size));
        seq += size;
      }
      expect(await repo.appendCounted(id, 1, lines(seq - 40, seq + 10))).toBe(10);
    });
    sizes.push(10);
    const rows = await f.orm.em.fork().execute<{ seq: number; at: Date }[]>('select seq, register_date as at from execution_log where execution_id = ? and seq >= 0 order by id', [id]);
    let first = 0;
    for (const size of sizes) {
      if (first > 0) expect(new Date(rows[first]!.at).getTime()).toBeGreaterThan(new Date(rows[first - 1]!.at).getTime());
      first += size;
    }
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: first }, (_, i) => i));
    // A poller continuing after a batch's last date starts at the next batch.
    const repo = new ExecutionLogRepository(f.orm.em.fork());
    first = 0;
    for (const size of sizes.slice(0, -1)) {
      first += size;
      const [next] = await repo.list(id, { after: new Date(rows[first - 1]!.at), limit: 1 });
      expect(next?.seq).toBe(first);
    }
  }, 60_000);

  it("dates a runner's one-statement lines after a line committed while they waited for the run's lock", async () => {
    const id = await newExecution();
    // Another transaction holds the run's row lock and adds a line dated a second ahead (as
    // batches written faster than the clock moves run ahead of it), then commits.
    const em = f.orm.em.fork();
    await em.begin();
    await em.execute('select id from execution where id = ? for update', [id]);
    const starting = f.client.startExecutionAttempt({ executionId: id, attempt: 1, runner: 'runner-test' });
    await new Promise((r) => setTimeout(r, 300));
    await em.execute("insert into execution_log (execution_id, attempt, seq, level, text, register_date) values (?, 0, -100, 'INFO', 'concurrent', now() + interval '1 second')", [id]);
    await em.commit();
    expect((await starting).proceed).toBe(true);
    const rows = await f.orm.em
      .fork()
      .execute<{ text: string; at: Date }[]>("select text, register_date as at from execution_log where execution_id = ? and (text = 'concurrent' or text like 'Attempt %') order by id", [id]);
    expect(rows.map((r) => r.text)).toEqual(['concurrent', expect.stringMatching(/^Attempt 1 started on runner runner-test/)]);
    // A poller that read the concurrent line (start=<its date>) still gets the attempt's.
    expect(new Date(rows[1]!.at).getTime()).toBeGreaterThan(new Date(rows[0]!.at).getTime());
  }, 60_000);

  it('refuses lines of an execution that does not exist, and deletes the lines of a deleted one', async () => {
    const missing = randomUUID();
    await expect(f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).appendCounted(missing, 1, lines(0, 2)))).rejects.toThrow(/violates its execution reference/);
    expect(await f.orm.em.fork().execute('select 1 from execution_log where execution_id = ?', [missing])).toEqual([]);

    const id = await newExecution();
    await f.orm.em.fork().transactional((em) => new ExecutionLogRepository(em).appendCounted(id, 1, lines(0, 100)));
    await f.orm.em.fork().execute('delete from execution where id = ?', [id]);
    expect(await f.orm.em.fork().execute('select 1 from execution_log where execution_id = ?', [id])).toEqual([]);
  }, 60_000);
});
