import { randomUUID } from 'node:crypto';
import { fromJson, toJson } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, timestampMs, ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { signExecutionToken } from '@gef/common/execution-token';
import { listenerApplicationName } from '@gef/common/pg-listener';
import { execution } from '@gef/protos';
import { claimSlot, endExecution, releaseSlot } from '../src/domain/run-slots';
import { deleteExecutionsOfUser } from '../src/domain/delete-executions';
import { DispatchRepository } from '../src/repositories/dispatch-repository';
import { ExecutionRepository } from '../src/repositories/execution-repository';
import { RunSpecRepository } from '../src/repositories/run-spec-repository';
import { runSpecOf } from '../src/domain/run-script';
import { runnerTailMs } from '../src/events/watch-execution';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { caller, serviceFixture, type ServiceFixture, logRows } from './support/service-fixture';

const S = execution.ExecutionStatus;
const L = execution.LogLevel;

async function codeOf(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error('expected the call to fail');
}

// The execution service's RPCs over a real PostgreSQL (Temporal and the script service faked).
describe('execution service', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_test');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  /** A user with a built script of their own. */
  function someone(over: { timeout?: number; paramsSchema?: Record<string, unknown>; status?: string } = {}) {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 4, ...over });
    return { userId, script };
  }

  async function run(userId: string, scriptId: string, params: Record<string, unknown> = {}, role: 'USER' | 'ADMIN' = 'USER') {
    const res = await f.client.runScript({ caller: caller(userId, role), idOrSlug: scriptId, params: params as never });
    await f.dispatch();
    return res.execution!;
  }

  /** A runner taking the run (attempt n). */
  async function startAttempt(id: string, attempt = 1) {
    return f.client.startExecutionAttempt({ executionId: id, attempt, runner: 'runner-test' });
  }

  describe('RunScript', () => {
    it('returns the execution PENDING at once, pinned to the current version, and starts its run', async () => {
      const { userId, script } = someone({ timeout: 77 });
      const e = await run(userId, script.slug, { a: 1, b: 'x' });
      expect(e.status).toBe(S.PENDING);
      expect(e.progress).toBe(0);
      expect(e.scriptVersion).toBe(4);
      expect(e.userId).toBe(userId);
      expect(e.params).toEqual({ a: 1, b: 'x' });
      expect(e.workflowId).toBe(`execution-${e.id}`);
      expect(e.endDate).toBeUndefined();
      expect(f.runs.started.at(-1)).toEqual({
        executionId: e.id,
        userId,
        scriptId: script.scriptId,
        concurrencyLimit: 3,
        timeoutSeconds: 77,
        prepareTimeoutSeconds: 300,
        heartbeatTimeoutSeconds: 10,
        maxAttempts: 3,
        // A free slot: taken at once, so the workflow needs no claim.
        slotGranted: true,
      });
    });

    it('does not limit ADMIN runs and applies the default timeout', async () => {
      const { script } = someone();
      const admin = randomUUID();
      const e = await run(admin, script.scriptId, {}, 'ADMIN');
      expect(f.runs.started.at(-1)).toMatchObject({ executionId: e.id, concurrencyLimit: null, timeoutSeconds: 600 });
    });

    it('refuses scripts the caller cannot see (404) and scripts not built (400)', async () => {
      const { script } = someone();
      expect(await codeOf(run(randomUUID(), script.scriptId))).toEqual({ code: Code.NotFound, message: 'Script not found' });
      const building = someone({ status: 'BUILDING' });
      expect(await codeOf(run(building.userId, building.script.scriptId))).toEqual({
        code: Code.InvalidArgument,
        message: `Script ${building.script.slug} is not BUILT`,
      });
    });

    it('checks params against the params_schema with the schema error', async () => {
      const { userId, script } = someone({
        paramsSchema: { type: 'object', properties: { year: { type: 'integer', minimum: 2000 } }, required: ['year'] },
      });
      expect(await codeOf(run(userId, script.scriptId, {}))).toEqual({ code: Code.InvalidArgument, message: "Invalid params: params must have required property 'year'" });
      expect(await codeOf(run(userId, script.scriptId, { year: 1999 }))).toEqual({ code: Code.InvalidArgument, message: 'Invalid params: params.year must be >= 2000' });
      expect((await run(userId, script.scriptId, { year: 2020 })).status).toBe(S.PENDING);
    });

    it('accepts a run while Temporal is down and starts its workflow from the outbox once it answers, once', async () => {
      const { userId, script } = someone();
      f.runs.failStart = true;
      let e;
      try {
        e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
        expect(e.status).toBe(S.PENDING);
        expect(await f.dispatch()).toBe(false);
      } finally {
        f.runs.failStart = false;
      }
      const waiting = await f.orm.em.fork().execute<{ attempts: number; last_error: string }[]>('select attempts, last_error from execution_dispatch where execution_id = ?', [e.id]);
      expect(waiting).toEqual([{ attempts: 1, last_error: 'Temporal is down' }]);
      expect(f.runs.started.some((r) => r.executionId === e.id)).toBe(false);
      // Due again after its backoff; made due now here.
      await f.orm.em.fork().execute('update execution_dispatch set next_at = now() where execution_id = ?', [e.id]);
      expect(await f.dispatch()).toBe(true);
      expect(f.runs.started.filter((r) => r.executionId === e.id)).toHaveLength(1);
      expect(await f.orm.em.fork().execute('select 1 from execution_dispatch where execution_id = ?', [e.id])).toEqual([]);
      expect(await f.dispatch()).toBe(true);
      expect(f.runs.started.filter((r) => r.executionId === e.id)).toHaveLength(1);
    });

    it('starts no workflow for a run cancelled before it was dispatched, unless it holds a slot to give back', async () => {
      const { userId, script } = someone();
      const admin = randomUUID();
      // ADMIN: no limit, no slot held.
      const unlimited = (await f.client.runScript({ caller: caller(admin, 'ADMIN'), idOrSlug: script.scriptId, params: {} })).execution!;
      // USER: took one of their slots when accepted.
      const limited = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
      await f.client.cancelExecution({ id: unlimited.id, caller: caller(admin, 'ADMIN') });
      await f.client.cancelExecution({ id: limited.id, caller: caller(userId) });
      // Both starts and both stops are due: a stop waits for its run's start.
      const batch = await f.orm.em.fork().transactional((em) => new DispatchRepository().claim(em, 3));
      expect(batch.map((row) => row.item?.kind ?? 'nothing')).toEqual(['nothing', 'start']);
      expect(await f.dispatch()).toBe(true);
      expect(f.runs.started.some((r) => r.executionId === unlimited.id)).toBe(false);
      expect(f.runs.started.filter((r) => r.executionId === limited.id)).toHaveLength(1);
      // Then the stops.
      const stops = await f.orm.em.fork().transactional((em) => new DispatchRepository().claim(em, 100));
      expect(stops.filter((row) => row.key.endsWith(unlimited.id) || row.key.endsWith(limited.id)).map((row) => row.item?.kind)).toEqual(['stop', 'stop']);
      expect(await f.dispatch()).toBe(true);
      expect(f.runs.stopped.filter((s) => s.executionId === unlimited.id || s.executionId === limited.id)).toHaveLength(2);
      const rows = await f.orm.em.fork().execute<{ status: string }[]>('select status from execution where id in (?, ?)', [unlimited.id, limited.id]);
      expect(rows.map((r) => r.status)).toEqual(['CANCELLED', 'CANCELLED']);
      expect(await f.orm.em.fork().execute('select 1 from execution_dispatch where execution_id in (?, ?)', [unlimited.id, limited.id])).toEqual([]);
    });

    it('takes a free slot when a run is accepted (READY once dispatched), and queues the run when none is free or others wait', async () => {
      const { userId, script } = someone();
      const slotOf = async (id: string) =>
        (await f.orm.em.fork().execute<{ slot_held: boolean; status: string }[]>('select slot_held, status from execution where id = ?', [id]))[0]!;
      const runs = [];
      for (let i = 0; i < 4; i++) runs.push((await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!);
      expect(runs.map((e) => e.status)).toEqual([S.PENDING, S.PENDING, S.PENDING, S.PENDING]);
      expect(await f.dispatch()).toBe(true);
      const byId = new Map(f.runs.started.map((r) => [r.executionId, r]));
      expect(runs.map((e) => byId.get(e.id)?.slotGranted)).toEqual([true, true, true, false]);
      expect(await Promise.all(runs.map((e) => slotOf(e.id)))).toEqual([
        { slot_held: true, status: 'READY' },
        { slot_held: true, status: 'READY' },
        { slot_held: true, status: 'READY' },
        { slot_held: false, status: 'PENDING' },
      ]);
      // A slot frees, but the fourth run still waits (unclaimed): a fifth does not overtake it.
      await f.orm.em.fork().execute('update execution set slot_held = false where id = ?', [runs[0]!.id]);
      const fifth = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
      expect(await f.dispatch()).toBe(true);
      expect(f.runs.started.find((r) => r.executionId === fifth.id)?.slotGranted).toBe(false);
    });
  });

  describe('reads', () => {
    it('shows an execution to its owner and ADMIN+, as NotFound to others and for non-UUID ids', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId, { p: true });
      expect((await f.client.getExecution({ id: e.id, caller: caller(userId) })).execution!.id).toBe(e.id);
      expect((await f.client.getExecution({ id: e.id.toUpperCase(), caller: caller(randomUUID(), 'SUPERADMIN') })).execution!.id).toBe(e.id);
      expect((await codeOf(f.client.getExecution({ id: e.id, caller: caller(randomUUID()) }))).code).toBe(Code.NotFound);
      expect((await codeOf(f.client.getExecution({ id: 'not-a-uuid', caller: caller(userId) }))).code).toBe(Code.NotFound);
      const lean = await f.client.getExecution({ id: e.id, caller: caller(userId), excludeParams: true, excludeResults: true });
      expect(lean.execution!.params).toBeUndefined();
    });

    it('lists own executions (ADMIN: all, user_id narrows), filtered, sorted and paginated', async () => {
      const a = someone();
      const b = someone();
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await run(a.userId, a.script.scriptId)).id);
      await run(b.userId, b.script.scriptId);
      // A second apart, in the order made: two runs accepted in one millisecond would tie.
      await f.orm.em
        .getConnection()
        .execute(`update execution set start_date = start_date + (array_position(array[?]::uuid[], id) * interval '1 second') where id = any(array[?]::uuid[])`, [ids, ids]);
      const own = await f.client.listExecutions({ caller: caller(a.userId), perPage: 2 });
      expect(own.total).toBe(3n);
      expect(own.executions.map((e) => e.id)).toEqual([ids[2], ids[1]]);
      expect(own.perPage).toBe(2);
      const page2 = await f.client.listExecutions({ caller: caller(a.userId), perPage: 2, page: 2 });
      expect(page2.executions.map((e) => e.id)).toEqual([ids[0]]);
      // A USER asking for someone else's runs still sees only their own.
      expect((await f.client.listExecutions({ caller: caller(a.userId), userId: b.userId })).total).toBe(0n);
      const admin = randomUUID();
      expect((await f.client.listExecutions({ caller: caller(admin, 'ADMIN'), userId: b.userId })).total).toBe(1n);
      expect((await f.client.listExecutions({ caller: caller(admin, 'ADMIN'), ownOnly: true })).total).toBe(0n);
      // The caller's own list (/execution/user) takes an older client's user_id and lists the caller's own all the same.
      expect((await f.client.listExecutions({ caller: caller(a.userId), ownOnly: true, userId: b.userId })).total).toBe(3n);
      expect((await f.client.listExecutions({ caller: caller(admin, 'ADMIN'), ownOnly: true, userId: b.userId })).total).toBe(0n);
      const sorted = await f.client.listExecutions({ caller: caller(a.userId), sort: 'start_date', excludeParams: true });
      expect(sorted.executions.map((e) => e.id)).toEqual(ids);
      expect(sorted.executions[0]!.params).toBeUndefined();
      const byScript = await f.client.listExecutions({ caller: caller(admin, 'ADMIN'), scriptId: b.script.scriptId });
      expect(byScript.total).toBe(1n);
      const byScripts = await f.client.listExecutions({ caller: caller(admin, 'ADMIN'), scriptIds: [a.script.scriptId, b.script.scriptId] });
      expect(byScripts.total).toBe(4n);
      expect((await f.client.listExecutions({ caller: caller(a.userId), status: 'pending,ready,running' })).total).toBe(3n);
      expect((await f.client.listExecutions({ caller: caller(a.userId), status: 'FINISHED' })).total).toBe(0n);
      expect((await f.client.listExecutions({ caller: caller(a.userId), filter: `id=${ids[1]}` })).executions.map((e) => e.id)).toEqual([ids[1]]);
      expect(await codeOf(f.client.listExecutions({ caller: caller(a.userId), filter: 'secret=1' }))).toEqual({
        code: Code.InvalidArgument,
        message: "Unknown filter field 'secret'",
      });
      expect((await codeOf(f.client.listExecutions({ caller: caller(a.userId), status: 'DONE' }))).code).toBe(Code.InvalidArgument);
    });

    // Tens of megabytes of results written and read back: seconds on a busy machine.
    it("bounds a list's params and results: a list without pagination stops before 32 MiB, a larger page is refused", async () => {
      const { userId, script } = someone();
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await run(userId, script.scriptId, { n: i })).id);
      // Results of 9 MiB each (as JSON text), set in the database directly.
      await f.orm.em.getConnection().execute(`update execution set results = jsonb_build_object('blob', repeat('x', 9 * 1024 * 1024)) where id = any(array[?]::uuid[])`, [ids]);
      const admin = caller(randomUUID(), 'ADMIN');
      const whole = await f.client.listExecutions({ caller: caller(userId) });
      expect(whole.total).toBe(5n);
      // Newest first: three fit in 32 MiB, with their results.
      expect(whole.executions.map((e) => e.id)).toEqual([ids[4], ids[3], ids[2]]);
      expect(toJson(ValueSchema, whole.executions[0]!.results!)).toEqual({ blob: 'x'.repeat(9 * 1024 * 1024) });
      expect(await codeOf(f.client.listExecutions({ caller: admin, userId, perPage: 5 }))).toEqual({
        code: Code.InvalidArgument,
        message: "This page's params and results exceed 32 MiB: ask for fewer per page (per_page), or leave them out (exclude=params,results)",
      });
      expect((await f.client.listExecutions({ caller: caller(userId), perPage: 3 })).executions).toHaveLength(3);
      const light = await f.client.listExecutions({ caller: caller(userId), excludeResults: true });
      expect(light.executions.map((e) => e.id)).toEqual([...ids].reverse());
      expect(light.executions[0]!.params).toBeDefined();
    }, 60_000);

    it('shares 100,000 embedded log lines between the executions of a list', async () => {
      const userId = randomUUID();
      const db = f.orm.em.getConnection();
      // 101 finished runs of one user, a thousand lines each, written straight into the tables.
      await db.execute(
        `insert into execution (id, script_id, user_id, status, progress, params, results, start_date, end_date, updated_at, script_version, attempt)
         select gen_random_uuid(), ?, ?, 'FINISHED', 100, '{}'::jsonb, 'null'::jsonb, now() - make_interval(secs => i), now(), now(), 1, 1 from generate_series(1, 101) i`,
        [randomUUID(), userId],
      );
      await db.execute(
        `insert into execution_log (execution_id, attempt, seq, level, text)
         select e.id, 1, n, 'INFO', 'line ' || n from execution e, generate_series(1, 1000) n where e.user_id = ?`,
        [userId],
      );
      const page = await f.client.listExecutions({ caller: caller(userId), perPage: 100, includeLogs: true });
      expect(page.executions.map((e) => e.logs.length)).toEqual(Array(100).fill(1000));
      const whole = await f.client.listExecutions({ caller: caller(userId), includeLogs: true });
      expect(whole.executions).toHaveLength(101);
      // 100,000 / 101: the first 990 lines of each, oldest first.
      expect(whole.executions.map((e) => e.logs.length)).toEqual(Array(101).fill(990));
      expect(whole.executions[0]!.logs.at(-1)!.text).toBe('line 990');
    }, 60_000);

    it('answers the newest runs of each of several scripts in one call (per_script), as the caller may see them', async () => {
      const { userId, script: a } = someone();
      const b = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1, public: true });
      const empty = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1 });
      const ofA = [];
      for (let i = 0; i < 4; i++) ofA.push(await run(userId, a.scriptId));
      const ofB = [await run(userId, b.scriptId)];
      const stranger = randomUUID();
      const theirs = await run(stranger, b.scriptId);
      const scriptIds = [b.scriptId, a.scriptId, empty.scriptId];
      const mine = await f.client.listExecutions({ caller: caller(userId), scriptIds, perScript: 3, excludeParams: true });
      // In the order asked, each script's newest first, at most 3 each; nobody else's runs.
      expect(mine.executions.map((e) => e.id)).toEqual([ofB[0]!.id, ofA[3]!.id, ofA[2]!.id, ofA[1]!.id]);
      expect(mine.executions[0]!.params).toBeUndefined();
      expect(mine.total).toBe(4n);
      const admin = await f.client.listExecutions({ caller: caller(randomUUID(), 'ADMIN'), scriptIds: [b.scriptId], perScript: 100 });
      expect(admin.executions.map((e) => e.id).sort()).toEqual([ofB[0]!.id, theirs.id].sort());
      expect((await codeOf(f.client.listExecutions({ caller: caller(userId), scriptIds: ['not-a-uuid'], perScript: 3 }))).code).toBe(Code.InvalidArgument);
      expect(await codeOf(f.client.listExecutions({ caller: caller(userId), scriptId: a.scriptId, perScript: 3 }))).toEqual({ code: Code.InvalidArgument, message: 'per_script needs script_ids' });
    });

    it('filters on updated_at (at or after) and start/end date ranges', async () => {
      const { userId, script } = someone();
      const first = await run(userId, script.scriptId);
      const second = await run(userId, script.scriptId);
      const since = timestampDate(second.updatedAt!);
      const changed = await f.client.listExecutions({ caller: caller(userId), updatedAt: timestampFromDate(since) });
      expect(changed.executions.map((e) => e.id)).toEqual([second.id]);
      const before = await f.client.listExecutions({ caller: caller(userId), startDateTo: first.startDate! });
      expect(before.executions.map((e) => e.id)).toEqual([first.id]);
      await f.client.updateExecution({ id: first.id, caller: caller(randomUUID(), 'ADMIN'), status: S.FINISHED });
      const ended = await f.client.listExecutions({ caller: caller(userId), endDateFrom: timestampFromDate(new Date(Date.now() - 60_000)) });
      expect(ended.executions.map((e) => e.id)).toEqual([first.id]);
    });
  });

  describe('UpdateExecution', () => {
    it('is for ADMIN+ (403 for the owner, 404 for others) and needs something to change', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: caller(userId), progress: 5 }))).code).toBe(Code.PermissionDenied);
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: caller(randomUUID()), progress: 5 }))).code).toBe(Code.NotFound);
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: caller(randomUUID(), 'ADMIN') }))).code).toBe(Code.InvalidArgument);
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: caller(randomUUID(), 'ADMIN'), progress: 101 }))).code).toBe(Code.InvalidArgument);
    });

    it('refuses CANCELLING as a status set by PATCH: 400 on a live execution, 404 on a missing one, 409 on an ended one', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const admin = caller(randomUUID(), 'ADMIN');
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: admin, status: S.CANCELLING }))).code).toBe(Code.InvalidArgument);
      expect((await codeOf(f.client.updateExecution({ id: randomUUID(), caller: admin, status: S.CANCELLING }))).code).toBe(Code.NotFound);
      await f.client.updateExecution({ id: e.id, caller: admin, status: S.FINISHED });
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: admin, status: S.CANCELLING }))).code).toBe(Code.Aborted);
    });

    it('keeps float progress and any JSON results; a terminal status sets end_date and progress 100 and is final', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const admin = caller(randomUUID(), 'ADMIN');
      const running = await f.client.updateExecution({ id: e.id, caller: admin, status: S.RUNNING, progress: 42.5 });
      expect(running.execution).toMatchObject({ status: S.RUNNING, progress: 42.5 });
      const withResults = await f.client.updateExecution({ id: e.id, caller: admin, results: fromJson(ValueSchema, [1, 'two', { three: null }]) });
      expect(withResults.execution!.results).toEqual(fromJson(ValueSchema, [1, 'two', { three: null }]));
      const done = await f.client.updateExecution({ id: e.id, caller: admin, status: S.FINISHED });
      expect(done.execution).toMatchObject({ status: S.FINISHED, progress: 100 });
      expect(done.execution!.endDate).toBeDefined();
      await f.dispatch();
      expect(f.runs.stopped.at(-1)).toEqual({ executionId: e.id, request: { reason: 'terminal', status: 'FINISHED' } });
      const again = await f.client.updateExecution({ id: e.id, caller: admin, status: S.FINISHED, progress: 3 });
      expect(again.changed).toBe(false);
      expect(again.execution!.progress).toBe(100);
      expect((await codeOf(f.client.updateExecution({ id: e.id, caller: admin, status: S.FAILED }))).code).toBe(Code.Aborted);
      const failed = await run(userId, script.scriptId);
      const withProgress = await f.client.updateExecution({ id: failed.id, caller: admin, status: S.FAILED, progress: 30 });
      expect(withProgress.execution).toMatchObject({ status: S.FAILED, progress: 30 });
    });

    it('moves a run only forward: a waiting run may only be ended, a cancelled one only CANCELLED', async () => {
      const { userId, script } = someone();
      const admin = caller(randomUUID(), 'ADMIN');
      const statusOf = async (id: string) => (await f.client.getExecution({ id, caller: admin })).execution!.status;
      // Three slots taken: the fourth run waits.
      for (let i = 0; i < 3; i++) await startAttempt((await run(userId, script.scriptId)).id);
      const waiting = await run(userId, script.scriptId);
      expect(await statusOf(waiting.id)).toBe(S.PENDING);
      for (const status of [S.READY, S.RUNNING]) {
        expect((await codeOf(f.client.updateExecution({ id: waiting.id, caller: admin, status }))).code).toBe(Code.Aborted);
      }
      expect(await statusOf(waiting.id)).toBe(S.PENDING);
      expect((await f.client.updateExecution({ id: waiting.id, caller: admin, status: S.PENDING, progress: 1 })).execution!.status).toBe(S.PENDING);

      const started = await run(userId, script.scriptId, {}, 'ADMIN');
      await startAttempt(started.id);
      expect(await statusOf(started.id)).toBe(S.RUNNING);
      for (const status of [S.PENDING, S.READY]) {
        expect((await codeOf(f.client.updateExecution({ id: started.id, caller: admin, status }))).code).toBe(Code.Aborted);
      }
      await f.client.cancelExecution({ id: started.id, caller: admin });
      expect(await statusOf(started.id)).toBe(S.CANCELLING);
      for (const status of [S.RUNNING, S.FINISHED, S.FAILED]) {
        expect((await codeOf(f.client.updateExecution({ id: started.id, caller: admin, status }))).code).toBe(Code.Aborted);
      }
      expect((await f.client.updateExecution({ id: started.id, caller: admin, status: S.CANCELLED })).execution!.status).toBe(S.CANCELLED);

      const ended = await f.client.updateExecution({ id: waiting.id, caller: admin, status: S.FAILED });
      expect(ended.execution).toMatchObject({ status: S.FAILED, progress: 100 });
    });

    it('accepts the execution\'s own token while it runs, and nothing else with it', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const other = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      expect(grant.proceed).toBe(true);
      const ok = await f.client.updateExecution({ id: e.id, executionToken: grant.token, progress: 10.25 });
      expect(ok.execution!.progress).toBe(10.25);
      // Another execution does not exist for it: 404, as for an id nobody holds.
      expect(await codeOf(f.client.updateExecution({ id: other.id, executionToken: grant.token, progress: 1 }))).toEqual({ code: Code.NotFound, message: 'Execution not found' });
      expect(await codeOf(f.client.updateExecution({ id: other.id, executionToken: grant.token }))).toEqual({ code: Code.NotFound, message: 'Execution not found' });
      expect(await codeOf(f.client.appendExecutionLogs({ id: other.id, executionToken: grant.token, lines: [{ text: 'elsewhere', level: L.INFO }] }))).toEqual({
        code: Code.NotFound,
        message: 'Execution not found',
      });
      // The runner's token is for the runner's RPCs only.
      expect((await codeOf(f.client.updateExecution({ id: e.id, executionToken: grant.runnerToken, progress: 1 }))).code).toBe(Code.Unauthenticated);
      const forged = await signExecutionToken('another-secret-of-enough-length', { executionId: e.id, scope: 'execution', attempt: 1, ttlSeconds: 60 });
      expect((await codeOf(f.client.updateExecution({ id: e.id, executionToken: forged, progress: 1 }))).code).toBe(Code.Unauthenticated);
      await f.client.updateExecution({ id: e.id, executionToken: grant.token, status: S.FINISHED, results: fromJson(ValueSchema, { ok: true }) });
      expect(await codeOf(f.client.updateExecution({ id: e.id, executionToken: grant.token, progress: 1 }))).toEqual({
        code: Code.Unauthenticated,
        message: 'The execution token is no longer valid: the execution is FINISHED',
      });
      expect((await codeOf(f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [{ text: 'late', level: L.INFO }] }))).code).toBe(Code.Unauthenticated);
    });

    it('keeps the sending token out of what a script sends with it: its log lines and its results', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [{ text: `API_TOKEN=${grant.token} and again ${grant.token}`, level: L.INFO }] });
      await f.client.updateExecution({ id: e.id, executionToken: grant.token, results: fromJson(ValueSchema, { env: { API_TOKEN: grant.token }, n: 1 }) });
      const owner = caller(userId);
      const lines = (await f.client.listExecutionLogs({ id: e.id, caller: owner })).lines!.texts;
      expect(lines).toContain('API_TOKEN=[redacted] and again [redacted]');
      const results = toJson(ValueSchema, (await f.client.getExecution({ id: e.id, caller: owner })).execution!.results!);
      expect(results).toEqual({ env: { API_TOKEN: '[redacted]' }, n: 1 });
      // An admin's own line is stored as sent, token-like text and all.
      await f.client.appendExecutionLogs({ id: e.id, caller: caller(randomUUID(), 'ADMIN'), lines: [{ text: `quoted ${grant.token}`, level: L.INFO }] });
      expect((await f.client.listExecutionLogs({ id: e.id, caller: owner })).lines!.texts).toContain(`quoted ${grant.token}`);
    });

    it("holds what the script appends with its own token to the run's log limits; the runner and admins are not counted", async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      f.deps.settings.apiLog = { maxLines: 3, maxBytes: 1024 ** 2 };
      try {
        const line = (text: string) => ({ text, level: L.INFO });
        await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [line('one'), line('two')] });
        await f.client.appendExecutionLogs({ id: e.id, caller: caller(randomUUID(), 'ADMIN'), lines: [line('admin')] });
        await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [line('three')] });
        expect(await codeOf(f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [line('four')] }))).toEqual({
          code: Code.FailedPrecondition,
          message: "This run's script has appended all the log it may through the API (3 lines or 1048576 bytes of text); the lines were not stored",
        });
        f.deps.settings.apiLog = { maxLines: 100, maxBytes: 1024 ** 2 };
        // Bytes count as well: 1 MiB of text in all.
        const big = 'x'.repeat(30_000);
        let stored = 0;
        for (;;) {
          const append = f.client.appendExecutionLogs({ id: e.id, executionToken: grant.token, lines: [line(big)] });
          if ((await append.then(() => 'stored', (err: unknown) => ConnectError.from(err).code)) !== 'stored') break;
          stored += 1;
        }
        // 3 + 4 bytes and 34 lines of 30,000 fit in 1 MiB; the 35th does not.
        expect(stored).toBe(34);
        const texts = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) })).map((l) => l.text);
        expect(texts.filter((t) => t === big)).toHaveLength(34);
        expect(texts.filter((t) => !t.startsWith('x'))).toEqual(expect.arrayContaining(['one', 'two', 'admin', 'three']));
        expect(texts).not.toContain('four');
      } finally {
        delete f.deps.settings.apiLog;
      }
    });
  });

  describe('logs', () => {
    it('stores a numbered batch once however often it is delivered, each line with its attempt, in order', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const first = await startAttempt(e.id, 1);
      const batch = { id: e.id, executionToken: first.runnerToken, lines: [0, 1, 2].map((seq) => ({ text: `a1 line ${seq}`, level: L.INFO, seq })) };
      expect((await f.client.appendExecutionLogs(batch)).appended).toBe(3);
      expect((await f.client.appendExecutionLogs(batch)).appended).toBe(0);
      // A redelivery overlapping a new batch stores only the new lines.
      const overlap = { ...batch, lines: [2, 3].map((seq) => ({ text: `a1 line ${seq}`, level: L.WARNING, seq })), progress: 12.5 };
      const reply = await f.client.appendExecutionLogs(overlap);
      expect(reply).toMatchObject({ appended: 1, stop: false, status: S.RUNNING });
      // The runner died; attempt 2 numbers its lines from 0 again.
      const second = await startAttempt(e.id, 2);
      await f.client.appendExecutionLogs({ id: e.id, executionToken: second.runnerToken, lines: [{ text: 'a2 line 0', level: L.INFO, seq: 0 }] });
      // The first attempt, back from the dead, is told to stop and stores nothing.
      const zombie = await f.client.appendExecutionLogs({ ...batch, lines: [{ text: 'zombie', level: L.INFO, seq: 9 }] });
      expect(zombie).toMatchObject({ appended: 0, stop: true, stopReason: 'superseded' });
      const logs = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) }));
      expect(logs.map((l) => [l.attempt, l.text])).toEqual([
        [1, 'Attempt 1 started on runner runner-test'],
        [1, 'a1 line 0'],
        [1, 'a1 line 1'],
        [1, 'a1 line 2'],
        [1, 'a1 line 3'],
        [2, expect.stringMatching(/^Attempt 2 started on runner runner-test/)],
        [2, 'a2 line 0'],
      ]);
      expect(logs.map((l) => Number(l.id))).toEqual([...logs.map((l) => Number(l.id))].sort((x, y) => x - y));
      expect((await f.client.getExecution({ id: e.id, caller: caller(userId) })).execution).toMatchObject({ attempt: 2, progress: 12.5 });
    });

    it('takes single lines from ADMIN+ (REST POST /log) and reads strictly after last_id and start', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const admin = caller(randomUUID(), 'ADMIN');
      const posted = [];
      for (const [text, level] of [['one', L.DEBUG], ['two', L.WARNING], ['two', L.WARNING]] as const) {
        const r = await f.client.appendExecutionLogs({ id: e.id, caller: admin, lines: [{ text, level }], returnLogs: true });
        posted.push(r.logs[0]!);
      }
      // Lines without a number are never deduplicated.
      expect(posted.map((l) => l.text)).toEqual(['one', 'two', 'two']);
      expect((await codeOf(f.client.appendExecutionLogs({ id: e.id, caller: caller(userId), lines: [{ text: 'x', level: L.INFO }] }))).code).toBe(Code.PermissionDenied);
      expect((await codeOf(f.client.appendExecutionLogs({ id: e.id, caller: admin, lines: [{ text: 'x', level: L.UNSPECIFIED }] }))).code).toBe(Code.InvalidArgument);
      const afterId = await f.client.listExecutionLogs({ id: e.id, caller: caller(userId), lastId: posted[0]!.id });
      expect(logRows(afterId).map((l) => l.text)).toEqual(['two', 'two']);
      // The page's columns say what the lines said when they were posted.
      expect(logRows(afterId)).toEqual(
        posted.slice(1).map((p) => ({ id: Number(p.id), text: p.text, level: p.level, registerMs: timestampMs(p.registerDate!), attempt: p.attempt, executionId: e.id })),
      );
      const afterStart = await f.client.listExecutionLogs({ id: e.id, caller: caller(userId), start: posted[2]!.registerDate! });
      expect(logRows(afterStart)).toEqual([]);
      expect((await codeOf(f.client.listExecutionLogs({ id: e.id, caller: caller(randomUUID()) }))).code).toBe(Code.NotFound);
    });

    it('reads a long log in pages (1,000 from the start, 5,000 after a cursor) that end on whole instants, in order', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id, 1);
      for (let from = 0; from < 6000; from += 3000) {
        const lines = Array.from({ length: 3000 }, (_, i) => ({ text: `line ${from + i}`, level: L.INFO, seq: from + i }));
        expect((await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.runnerToken, lines })).appended).toBe(3000);
      }
      const pages = [logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) }))];
      while (pages.at(-1)!.length > 0) pages.push(logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId), lastId: BigInt(pages.at(-1)!.at(-1)!.id) })));
      const all = pages.flat();
      // The service's own line (the attempt's start), then the runner's, each once and in order.
      expect(all.map((l) => l.text)).toEqual(['Attempt 1 started on runner runner-test', ...Array.from({ length: 6000 }, (_, i) => `line ${i}`)]);
      expect(pages[0]!.length).toBeGreaterThan(0);
      expect(pages[0]!.length).toBeLessThanOrEqual(1000);
      for (let i = 1; i < pages.length - 1; i++) {
        // No instant is split between two pages (a page of one instant may run past 5,000).
        expect(pages[i]!.at(0)!.registerMs).toBeGreaterThan(pages[i - 1]!.at(-1)!.registerMs);
        const instants = new Set(pages[i]!.map((l) => l.registerMs)).size;
        if (instants > 1) expect(pages[i]!.length).toBeLessThanOrEqual(5000);
      }
      const asked = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId), limit: 10 }));
      expect(asked.length).toBeLessThanOrEqual(10);
      expect(asked).toEqual(all.slice(0, asked.length));
    });
  });

  describe('a log of exactly one page', () => {
    it('comes whole in one read (1,000 lines from the start), even when its last lines share an instant', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id, 1);
      // 999 runner lines in one batch (one instant) after the service's own line: 1,000 in all.
      const lines = Array.from({ length: 999 }, (_, i) => ({ text: `line ${i}`, level: L.INFO, seq: i }));
      expect((await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.runnerToken, lines })).appended).toBe(999);
      const page = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) }));
      expect(page).toHaveLength(1000);
      expect(page.at(-1)!.text).toBe('line 998');
    });
  });

  describe('CancelExecution', () => {
    it('cancels a run that has not started at once', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const res = await f.client.cancelExecution({ id: e.id, caller: caller(userId) });
      expect(res.execution).toMatchObject({ status: S.CANCELLED, progress: 100 });
      expect(res.execution!.endDate).toBeDefined();
      // Dispatched with a free slot: READY, not started on a runner yet.
      expect(res.cancellationDetails).toMatchObject({ previousStatus: S.READY, immediate: true, requestedBy: userId });
      await f.dispatch();
      expect(f.runs.stopped.at(-1)).toEqual({ executionId: e.id, request: { reason: 'cancel', status: 'CANCELLED' } });
      expect(await codeOf(f.client.cancelExecution({ id: e.id, caller: caller(userId) }))).toEqual({
        code: Code.InvalidArgument,
        message: 'Execution is already CANCELLED; it cannot be cancelled',
      });
      // The runner that picks it up afterwards does not start it.
      expect(await startAttempt(e.id)).toMatchObject({ proceed: false, status: S.CANCELLED });
    });

    it('moves a running run to CANCELLING, tells its runner, and ends it CANCELLED', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      expect((await codeOf(f.client.cancelExecution({ id: e.id, caller: caller(randomUUID()) }))).code).toBe(Code.NotFound);
      const res = await f.client.cancelExecution({ id: e.id, caller: caller(randomUUID(), 'ADMIN') });
      expect(res.execution).toMatchObject({ status: S.CANCELLING });
      expect(res.cancellationDetails).toMatchObject({ previousStatus: S.RUNNING, immediate: false });
      expect((await codeOf(f.client.cancelExecution({ id: e.id, caller: caller(userId) }))).code).toBe(Code.Aborted);
      const reply = await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.runnerToken, lines: [{ text: 'stopping', level: L.INFO, seq: 0 }] });
      expect(reply).toMatchObject({ stop: true, stopReason: 'cancel' });
      const done = await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: grant.runnerToken, status: S.CANCELLED, lines: [] });
      expect(done).toMatchObject({ applied: true, status: S.CANCELLED });
      const logs = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) })).map((l) => l.text);
      expect(logs).toEqual(['Attempt 1 started on runner runner-test', expect.stringMatching(/^Cancellation requested by user .*: stopping the script$/), 'stopping', 'Execution cancelled']);
    });

    it('tells the workflows of runs stopped while Temporal is down once it answers, each once', async () => {
      const { userId, script } = someone();
      const admin = caller(randomUUID(), 'ADMIN');
      const ready = await run(userId, script.scriptId);
      const running = await run(userId, script.scriptId);
      const ended = await run(userId, script.scriptId);
      await startAttempt(running.id);
      await startAttempt(ended.id);
      const ids = [ready.id, running.id, ended.id];
      const told = () => f.runs.stopped.filter((s) => ids.includes(s.executionId)).sort((a, b) => ids.indexOf(a.executionId) - ids.indexOf(b.executionId));
      f.runs.failStop = true;
      try {
        expect((await f.client.cancelExecution({ id: ready.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLED });
        expect((await f.client.cancelExecution({ id: running.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLING });
        expect((await f.client.updateExecution({ id: ended.id, caller: admin, status: S.FINISHED })).execution).toMatchObject({ status: S.FINISHED });
        // Ended from outside while being cancelled: the workflow needs telling only once.
        expect((await f.client.updateExecution({ id: running.id, caller: admin, status: S.CANCELLED })).execution).toMatchObject({ status: S.CANCELLED });
        // Temporal refuses: the stops wait, nothing is lost.
        expect(await f.dispatch()).toBe(false);
        expect(told()).toEqual([]);
      } finally {
        f.runs.failStop = false;
      }
      // Back: told after the retry's backoff (at most 500 ms after one failure).
      await new Promise((r) => setTimeout(r, 600));
      expect(await f.dispatch()).toBe(true);
      expect(told()).toEqual([
        { executionId: ready.id, request: { reason: 'cancel', status: 'CANCELLED' } },
        { executionId: running.id, request: { reason: 'cancel', status: 'CANCELLED' } },
        { executionId: ended.id, request: { reason: 'terminal', status: 'FINISHED' } },
      ]);
      expect(await f.orm.em.fork().execute('select 1 from execution_stop_dispatch where execution_id in (?)', [ids])).toEqual([]);
      expect(await f.dispatch()).toBe(true);
      expect(told()).toHaveLength(3);
    });
  });

  describe('runner attempts', () => {
    it('records the outcome with results and the last lines; RUNNING with the attempt before', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId, { x: 1 });
      const grant = await startAttempt(e.id);
      expect(grant).toMatchObject({ proceed: true, status: S.RUNNING, userId });
      expect(JSON.parse(grant.paramsJson)).toEqual({ x: 1 });
      expect(grant.spec).toMatchObject({ scriptId: script.scriptId, version: 4, digest: 'a'.repeat(64), timeoutSeconds: 600, scriptUserId: userId });
      const done = await f.client.completeExecutionAttempt({
        executionId: e.id,
        runnerToken: grant.runnerToken,
        status: S.FINISHED,
        resultsJson: '{"answer":42,"big":12345678901234567890}',
        lines: [{ text: 'last', level: L.INFO, seq: 0 }],
      });
      expect(done).toMatchObject({ applied: true, status: S.FINISHED });
      const got = (await f.client.getExecution({ id: e.id, caller: caller(userId) })).execution!;
      expect(got).toMatchObject({ status: S.FINISHED, progress: 100, attempt: 1 });
      expect(got.results).toEqual(fromJson(ValueSchema, { answer: 42, big: 12345678901234567890 }));
    });

    it('ignores the outcome of a superseded attempt; a later one ends the run FAILED with its progress and last lines, small batch or large', async () => {
      for (const lastLines of [3, 40]) {
        const { userId, script } = someone();
        const e = await run(userId, script.scriptId);
        const first = await startAttempt(e.id, 1);
        // A runner that asks again for the attempt it holds gets the same grant, and no second line.
        expect(await startAttempt(e.id, 1)).toMatchObject({ proceed: true, status: S.RUNNING, spec: { scriptId: script.scriptId } });
        const second = await startAttempt(e.id, 2);
        expect(await startAttempt(e.id, 1)).toMatchObject({ proceed: false, reason: 'attempt 2 runs the execution', status: S.RUNNING });
        const late = await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: first.runnerToken, status: S.FINISHED, resultsJson: '1', lines: [{ text: 'late', level: L.INFO, seq: 0 }] });
        expect(late).toMatchObject({ applied: false, status: S.RUNNING });
        const lines = Array.from({ length: lastLines }, (_, seq) => ({ text: `last ${seq}`, level: L.ERROR, seq }));
        const done = await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: second.runnerToken, status: S.FAILED, progress: 37.5, lines });
        expect(done).toMatchObject({ applied: true, status: S.FAILED });
        // Delivered again (the answer was lost): nothing changes, no line is stored twice.
        expect(await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: second.runnerToken, status: S.FAILED, progress: 37.5, lines })).toMatchObject({
          applied: false,
          status: S.FAILED,
        });
        const got = (await f.client.getExecution({ id: e.id, caller: caller(userId), includeLogs: true })).execution!;
        expect(got).toMatchObject({ status: S.FAILED, progress: 37.5, attempt: 2 });
        expect(got.results).toBeUndefined();
        expect(got.logs.map((l) => l.text)).toEqual([
          'Attempt 1 started on runner runner-test',
          expect.stringMatching(/^Attempt 2 started on runner runner-test/),
          ...lines.map((l) => l.text),
        ]);
      }
    });

    it('sets progress 100 on an outcome that carries none, as a PATCH to an end does', async () => {
      const { userId, script } = someone();
      const failed = await run(userId, script.scriptId);
      const grant = await startAttempt(failed.id);
      await f.client.completeExecutionAttempt({ executionId: failed.id, runnerToken: grant.runnerToken, status: S.FAILED, lines: [] });
      expect((await f.client.getExecution({ id: failed.id, caller: caller(userId) })).execution).toMatchObject({ status: S.FAILED, progress: 100 });
      const cancelled = await run(userId, script.scriptId);
      const running = await startAttempt(cancelled.id);
      await f.client.updateExecution({ id: cancelled.id, executionToken: running.token, progress: 20 });
      await f.client.cancelExecution({ id: cancelled.id, caller: caller(userId) });
      await f.client.completeExecutionAttempt({ executionId: cancelled.id, runnerToken: running.runnerToken, status: S.CANCELLED, lines: [] });
      expect((await f.client.getExecution({ id: cancelled.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLED, progress: 100 });
    });

    it('never overwrites a status set from outside, but keeps the runner\'s lines', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      await f.client.updateExecution({ id: e.id, caller: caller(randomUUID(), 'ADMIN'), status: S.FAILED });
      const reply = await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.runnerToken, lines: [{ text: 'still here', level: L.INFO, seq: 0 }] });
      expect(reply).toMatchObject({ stop: true, stopReason: 'terminal' });
      const done = await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson: '1', lines: [{ text: 'stopped', level: L.INFO, seq: 1 }] });
      expect(done).toMatchObject({ applied: false, status: S.FAILED });
      const got = (await f.client.getExecution({ id: e.id, caller: caller(userId), includeLogs: true })).execution!;
      expect(got.status).toBe(S.FAILED);
      expect(got.results).toBeUndefined();
      expect(got.logs.map((l) => l.text)).toEqual(['Attempt 1 started on runner runner-test', 'still here', 'stopped']);
    });

    it('ends a run FAILED for the workflow without touching a terminal one', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      expect(await endExecution(f.deps, { executionId: e.id, status: 'FAILED', reason: 'The run failed: its runner stopped answering (3 attempts)' })).toEqual({ status: 'FAILED' });
      expect(await endExecution(f.deps, { executionId: e.id, status: 'CANCELLED', reason: 'x' })).toEqual({ status: 'FAILED' });
      const logs = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) }));
      expect(logs.map((l) => [l.level, l.text])).toEqual([[L.ERROR, 'The run failed: its runner stopped answering (3 attempts)']]);
    });

    it('ends a run CANCELLED for the workflow at progress 100, as the runner\'s report would; FAILED keeps the last progress', async () => {
      const { userId, script } = someone();
      const [cancelled, failed] = [await run(userId, script.scriptId), await run(userId, script.scriptId)];
      for (const e of [cancelled, failed]) {
        const grant = await startAttempt(e.id);
        await f.client.updateExecution({ id: e.id, executionToken: grant.token, progress: 40 });
      }
      // Its runner is gone: the cancel is ended by the platform.
      await f.client.cancelExecution({ id: cancelled.id, caller: caller(userId) });
      expect(await endExecution(f.deps, { executionId: cancelled.id, status: 'FAILED', reason: 'its runner stopped answering' })).toEqual({ status: 'CANCELLED' });
      expect(await endExecution(f.deps, { executionId: failed.id, status: 'FAILED', reason: 'its runner stopped answering' })).toEqual({ status: 'FAILED' });
      expect((await f.client.getExecution({ id: cancelled.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLED, progress: 100 });
      expect((await f.client.getExecution({ id: failed.id, caller: caller(userId) })).execution).toMatchObject({ status: S.FAILED, progress: 40 });
    });
  });

  describe('concurrency slots', () => {
    it('lets three runs of a USER go, queues the fourth (queued_at), and wakes the oldest when one ends', async () => {
      const { userId, script } = someone();
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await run(userId, script.scriptId)).id);
      const claim = (id: string) => claimSlot(f.deps, { executionId: id, userId, limit: 3 });
      // Claims come in any order; the oldest runs win.
      expect(await claim(ids[4]!)).toEqual({ outcome: 'waiting' });
      expect(await claim(ids[0]!)).toEqual({ outcome: 'granted' });
      expect(await claim(ids[1]!)).toEqual({ outcome: 'granted' });
      expect(await claim(ids[3]!)).toEqual({ outcome: 'waiting' });
      expect(await claim(ids[2]!)).toEqual({ outcome: 'granted' });
      expect(await claim(ids[2]!)).toEqual({ outcome: 'granted' });
      const queued = (await f.client.getExecution({ id: ids[3]!, caller: caller(userId) })).execution!;
      expect(queued.status).toBe(S.PENDING);
      expect(queued.queuedAt).toBeDefined();
      expect((await f.client.getExecution({ id: ids[0]!, caller: caller(userId) })).execution!.status).toBe(S.READY);
      await f.client.updateExecution({ id: ids[1]!, caller: caller(randomUUID(), 'ADMIN'), status: S.FINISHED });
      expect(await releaseSlot(f.deps, { executionId: ids[1]!, userId, limit: 3 })).toEqual({ wake: [ids[3]] });
      expect(await claim(ids[4]!)).toEqual({ outcome: 'waiting' });
      expect(await claim(ids[3]!)).toEqual({ outcome: 'granted' });
      // A cancelled waiter ends; its release passes the turn on.
      await f.client.cancelExecution({ id: ids[4]!, caller: caller(userId) });
      expect(await claim(ids[4]!)).toEqual({ outcome: 'ended', status: 'CANCELLED' });
      expect(await releaseSlot(f.deps, { executionId: ids[4]!, userId, limit: 3 })).toEqual({ wake: [] });
    });

    it('wakes the runs behind a queued run cancelled before its workflow started: it has no workflow to pass its turn on', async () => {
      const { userId, script } = someone();
      const previous = f.deps.settings.maxConcurrent;
      f.deps.settings.maxConcurrent = 1;
      try {
        const accept = async () => (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!.id;
        const first = await accept();
        await f.dispatch();
        const w0 = await accept();
        const w1 = await accept();
        // w1's workflow has started and waits; w0's start is not delivered yet (Temporal refused it).
        expect(await claimSlot(f.deps, { executionId: w1, userId, limit: 1 })).toEqual({ outcome: 'waiting' });
        await f.client.updateExecution({ id: first, caller: caller(randomUUID(), 'ADMIN'), status: S.FINISHED });
        // The first run's workflow gives the slot back and wakes w0, which has no workflow to tell.
        expect(await releaseSlot(f.deps, { executionId: first, userId, limit: 1 })).toEqual({ wake: [w0] });
        await f.client.cancelExecution({ id: w0, caller: caller(userId) });
        f.runs.woken.length = 0;
        expect(await f.dispatch()).toBe(true);
        expect(f.runs.started.map((r) => r.executionId)).not.toContain(w0);
        expect(f.runs.woken).toEqual([w1]);
        expect(await claimSlot(f.deps, { executionId: w1, userId, limit: 1 })).toEqual({ outcome: 'granted' });
      } finally {
        f.deps.settings.maxConcurrent = previous;
      }
    });
  });

  describe('WatchExecution', () => {
    it('streams the state, then lines, progress and status as they happen, and resumes exactly after a line', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      const controller = new AbortController();
      const seen: string[] = [];
      const ids: bigint[] = [];
      const watching = (async () => {
        for await (const m of f.client.watchExecution({ id: e.id, caller: caller(userId) }, { signal: controller.signal })) {
          if (m.event.case === 'log') {
            seen.push(`log ${m.event.value.text}`);
            ids.push(m.event.value.id);
          } else if (m.event.case === 'progress') seen.push(`progress ${m.event.value.progress}`);
          else if (m.event.case === 'status') {
            const results = m.event.value.execution?.results;
            seen.push(`status ${execution.ExecutionStatus[m.event.value.status]}${results ? ` ${JSON.stringify(toJson(ValueSchema, results))}` : ''}`);
          }
        }
      })();
      const until = async (n: number) => {
        for (let i = 0; i < 500 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      };
      await until(2);
      await f.client.appendExecutionLogs({ id: e.id, executionToken: grant.runnerToken, lines: [{ text: 'one', level: L.INFO, seq: 0 }], progress: 50 });
      await until(4);
      await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson: '"OK"', lines: [{ text: 'two', level: L.INFO, seq: 1 }] });
      await watching;
      // The terminal status carries the results (a status before it none).
      expect(seen).toEqual(['status RUNNING', 'log Attempt 1 started on runner runner-test', 'log one', 'progress 50', 'log two', 'progress 100', 'status FINISHED "OK"']);

      const resumed: string[] = [];
      for await (const m of f.client.watchExecution({ id: e.id, caller: caller(userId), afterLogId: ids[1]! })) {
        if (m.event.case === 'log') resumed.push(m.event.value.text);
        else if (m.event.case === 'status') {
          resumed.push(`status ${execution.ExecutionStatus[m.event.value.status]}`);
          expect(m.event.value.execution!.results).toEqual(fromJson(ValueSchema, 'OK'));
          expect(m.lastLogId).toBe(ids[2]);
        }
      }
      expect(resumed).toEqual(['two', 'status FINISHED']);
      expect((await codeOf((async () => { for await (const _ of f.client.watchExecution({ id: e.id, caller: caller(randomUUID()) })) void _; })())).code).toBe(Code.NotFound);
    });
  });

  describe('WatchExecution of a run ended from outside', () => {
    it('waits for the lines of the runner still stopping the script, then ends', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId);
      const grant = await startAttempt(e.id);
      const admin = caller(randomUUID(), 'ADMIN');
      const seen: string[] = [];
      let ended = false;
      const watching = (async () => {
        for await (const m of f.client.watchExecution({ id: e.id, caller: caller(userId) })) {
          if (m.event.case === 'log') seen.push(`log ${m.event.value.text}`);
          else if (m.event.case === 'status') seen.push(`status ${execution.ExecutionStatus[m.event.value.status]}`);
        }
        ended = true;
      })();
      const until = async (check: () => boolean) => {
        for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
      };
      await until(() => seen.includes('status RUNNING'));
      await f.client.updateExecution({ id: e.id, caller: admin, status: S.FINISHED });
      await until(() => seen.includes('status FINISHED'));
      // The runner still holds the run: its last lines are to come.
      await new Promise((r) => setTimeout(r, 300));
      expect(ended).toBe(false);
      const last = await f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: grant.runnerToken, status: S.FAILED, lines: [{ text: 'The script stopped', level: L.INFO, seq: 0 }] });
      expect(last).toMatchObject({ applied: false, status: S.FINISHED });
      await watching;
      expect(seen.slice(-2)).toEqual(['status FINISHED', 'log The script stopped']);
      // A run its runner ended itself ends its stream at once.
      const own = await run(userId, script.scriptId);
      const ownGrant = await startAttempt(own.id);
      await f.client.completeExecutionAttempt({ executionId: own.id, runnerToken: ownGrant.runnerToken, status: S.FINISHED, resultsJson: '1', lines: [] });
      const began = Date.now();
      for await (const _ of f.client.watchExecution({ id: own.id, caller: caller(userId) })) void _;
      expect(Date.now() - began).toBeLessThan(2000);
    });

    it('keeps waiting while the runner still holds the run, past 15 s (its grace may be up to 300 s), and no longer than the bound', async () => {
      const { userId, script } = someone();
      const admin = caller(randomUUID(), 'ADMIN');
      const db = f.orm.em.getConnection();
      /** A running run ended from outside `agoSeconds` ago, its runner still stopping the script. */
      const endedAgo = async (agoSeconds: number) => {
        const e = await run(userId, script.scriptId);
        const grant = await startAttempt(e.id);
        await f.client.updateExecution({ id: e.id, caller: admin, status: S.FINISHED });
        await db.execute(`update execution set end_date = end_date - make_interval(secs => ?) where id = ?`, [agoSeconds, e.id]);
        return { id: e.id, grant };
      };
      const slow = await endedAgo(60);
      const seen: string[] = [];
      let ended = false;
      const watching = (async () => {
        for await (const m of f.client.watchExecution({ id: slow.id, caller: caller(userId) })) {
          if (m.event.case === 'log') seen.push(`log ${m.event.value.text}`);
          else if (m.event.case === 'status') seen.push(`status ${execution.ExecutionStatus[m.event.value.status]}`);
        }
        ended = true;
      })();
      for (let i = 0; i < 500 && !seen.includes('status FINISHED'); i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 300));
      expect(ended).toBe(false);
      await f.client.completeExecutionAttempt({ executionId: slow.id, runnerToken: slow.grant.runnerToken, status: S.CANCELLED, lines: [{ text: 'The script stopped', level: L.INFO, seq: 0 }] });
      await watching;
      expect(seen.slice(-2)).toEqual(['status FINISHED', 'log The script stopped']);

      // A runner that never reports (it died) holds a stream no longer than the bound.
      const gone = await endedAgo(runnerTailMs(f.deps.settings.heartbeatTimeoutSeconds) / 1000 + 1);
      expect((await db.execute(`select runner_attempt from execution where id = ?`, [gone.id]))[0]).toEqual({ runner_attempt: 1 });
      const began = Date.now();
      for await (const _ of f.client.watchExecution({ id: gone.id, caller: caller(userId) })) void _;
      expect(Date.now() - began).toBeLessThan(2000);
      expect(runnerTailMs(10)).toBe(330_000);
    });
  });

  describe('WatchChanges', () => {
    it('announces the ids of changed executions and the owners of executions created, changed or deleted', async () => {
      const { userId, script } = someone();
      const controller = new AbortController();
      const ids = new Set<string>();
      const owners: string[] = [];
      let batches = 0;
      const watching = (async () => {
        try {
          for await (const m of f.client.watchChanges({}, { signal: controller.signal })) {
            batches++;
            for (const id of m.executionIds) ids.add(id);
            owners.push(...m.ownerIds);
          }
        } catch {
          // aborted
        }
      })();
      const until = async (check: () => boolean) => {
        for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
      };
      await until(() => batches > 0);
      // Created (an insert announces its owner, though no id changed).
      const e = await run(userId, script.scriptId);
      await until(() => owners.includes(userId));
      expect(owners).toContain(userId);
      // Changed.
      owners.length = 0;
      await startAttempt(e.id);
      await until(() => ids.has(e.id) && owners.includes(userId));
      expect(ids.has(e.id)).toBe(true);
      expect(owners).toContain(userId);
      // Deleted, with the user.
      owners.length = 0;
      await deleteExecutionsOfUser(f.deps, userId);
      await until(() => owners.includes(userId));
      expect(owners).toContain(userId);
      controller.abort();
      await watching;
    });

    it('says in every batch while its listener is away that changes are not followed, and when they are again', async () => {
      const controller = new AbortController();
      const seen: { reset: boolean; paused: boolean }[] = [];
      const watching = (async () => {
        try {
          for await (const m of f.client.watchChanges({}, { signal: controller.signal })) seen.push({ reset: m.reset, paused: m.paused });
        } catch {
          // aborted
        }
      })();
      const until = async (check: () => boolean) => {
        // The listener reconnects with a backoff: on a busy machine, seconds.
        for (let i = 0; i < 3000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
        expect(check()).toBe(true);
      };
      await until(() => seen.length > 0);
      expect(seen[0]).toEqual({ reset: false, paused: false });
      // The listener's connection ends (a database restart, a proxy's idle cut).
      await f.deps.orm.em.getConnection().execute('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ?', [listenerApplicationName]);
      await until(() => seen.some((b) => b.paused));
      expect(seen.find((b) => b.paused)).toEqual({ reset: true, paused: true });
      // Back: a batch says so (and that changes may have been missed meanwhile).
      const lost = seen.findIndex((b) => b.paused);
      await until(() => seen.slice(lost).some((b) => !b.paused));
      expect(seen.slice(lost).find((b) => !b.paused)).toEqual({ reset: true, paused: false });
      controller.abort();
      await watching;
    }, 60_000);
  });

  describe('deleteExecutionsOfUser', () => {
    it('drops the starts not yet delivered before telling runs to stop, and tells ended runs whose stop waits in the outbox', async () => {
      const { userId, script } = someone();
      const ended = await run(userId, script.scriptId);
      const queued = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!.id;
      // Ended from outside while its runner still runs: its stop is not delivered yet.
      await f.client.updateExecution({ id: ended.id, caller: caller(randomUUID(), 'ADMIN'), status: S.FAILED });
      const toldOf = (id: string) => f.runs.stopped.filter((s) => s.executionId === id).map((s) => s.request.reason);
      // The step is stopped once both were told (its attempt timed out, say), before any row goes.
      await expect(
        deleteExecutionsOfUser(f.deps, userId, () => {
          if (toldOf(queued).length > 0 && toldOf(ended.id).length > 0) throw new Error('the attempt is no longer wanted');
        }),
      ).rejects.toThrow('the attempt is no longer wanted');
      expect(toldOf(queued)).toEqual(['deleted']);
      expect(toldOf(ended.id)).toContain('deleted');
      // The queued run's row is still there, but no workflow of it can start now.
      expect((await f.client.getExecution({ id: queued, caller: caller(userId) })).execution!.id).toBe(queued);
      await f.dispatch();
      expect(f.runs.started.map((r) => r.executionId)).not.toContain(queued);
      expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(2);
    });

    it('removes the user\'s executions with their logs and stops the ones still going', async () => {
      const { userId, script } = someone();
      const other = randomUUID();
      f.scripts.scripts.get(script.scriptId)!.public = true;
      const mine = await run(userId, script.scriptId);
      await f.client.appendExecutionLogs({ id: mine.id, caller: caller(randomUUID(), 'ADMIN'), lines: [{ text: 'x', level: L.INFO }] });
      const theirs = await run(other, script.scriptId);
      expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(1);
      expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(0);
      expect(f.runs.stopped.at(-1)).toEqual({ executionId: mine.id, request: { reason: 'deleted' } });
      expect((await codeOf(f.client.getExecution({ id: mine.id, caller: caller(userId) }))).code).toBe(Code.NotFound);
      expect((await f.client.getExecution({ id: theirs.id, caller: caller(other) })).execution!.id).toBe(theirs.id);
      const rows = await f.orm.em.fork().execute('select count(*)::int as n from execution_log where execution_id = ?', [mine.id]);
      expect(rows[0]).toEqual({ n: 0 });
    });

    it('stops a run before deleting it: when the stop cannot be sent, nothing is deleted and a retry finishes', async () => {
      const { userId, script } = someone();
      const going = await run(userId, script.scriptId);
      f.runs.failStop = true;
      await expect(deleteExecutionsOfUser(f.deps, userId)).rejects.toThrow('Temporal is down');
      expect((await f.client.getExecution({ id: going.id, caller: caller(userId) })).execution!.id).toBe(going.id);
      f.runs.failStop = false;
      expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(1);
      expect(f.runs.stopped.at(-1)).toEqual({ executionId: going.id, request: { reason: 'deleted' } });
      expect((await codeOf(f.client.getExecution({ id: going.id, caller: caller(userId) }))).code).toBe(Code.NotFound);
    });
    it("keeps the run spec of a version that another user's run, being accepted meanwhile, uses", async () => {
      const { userId, script } = someone();
      f.scripts.scripts.get(script.scriptId)!.public = true;
      await run(userId, script.scriptId);
      // Another user's run of the same version: accepted (its statement done), not yet committed.
      let commit!: () => void;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let inserted!: () => void;
      const insertDone = new Promise<void>((resolve) => (inserted = resolve));
      const accepting = f.orm.em.fork().transactional(async (em) => {
        await new ExecutionRepository(em).insert({ id: randomUUID(), scriptId: script.scriptId, userId: randomUUID(), params: {}, scriptVersion: script.version }, [
          RunSpecRepository.record(runSpecOf(await f.scripts.scriptForRun({ userId, role: 'USER' }, script.scriptId))),
        ]);
        inserted();
        await committed;
      });
      await insertDone;
      let deleted = false;
      const deleting = deleteExecutionsOfUser(f.deps, userId).then(() => (deleted = true));
      await new Promise((r) => setTimeout(r, 300));
      // The prune waits for the run's commit rather than delete the spec under it.
      const waited = !deleted;
      commit();
      await accepting;
      await deleting;
      expect(waited).toBe(true);
      const specs = await f.orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from script_run_spec where script_id = ? and version = ?', [script.scriptId, script.version]);
      expect(specs[0]!.n).toBe(1);
    });
  });

  describe('list totals from the per-user counts', () => {
    const count = async (where = 'true', params: unknown[] = []) =>
      Number((await f.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from execution where ${where}`, params))[0]!.n);

    it('agree with counting rows, for one owner and for everyone, through inserts and deletes of many rows at once', async () => {
      const { userId, script } = someone();
      const other = someone();
      await run(userId, script.scriptId);
      await run(other.userId, other.script.scriptId);
      // Many rows in one statement, as a bulk import would write them.
      await f.orm.em
        .fork()
        .execute(
          `insert into execution (id, script_id, user_id, status, script_version)
           select gen_random_uuid(), ?, ?, 'FINISHED', 4 from generate_series(1, 250)`,
          [script.scriptId, userId],
        );
      const own = await f.client.listExecutions({ caller: caller(userId), perPage: 5 });
      expect(Number(own.total)).toBe(251);
      expect(Number(own.total)).toBe(await count('user_id = ?', [userId]));
      const all = await f.client.listExecutions({ caller: caller(randomUUID(), 'ADMIN'), perPage: 5 });
      expect(Number(all.total)).toBe(await count());
      const narrowed = await f.client.listExecutions({ caller: caller(randomUUID(), 'ADMIN'), userId: other.userId });
      expect(Number(narrowed.total)).toBe(1);

      await f.orm.em.fork().execute(`delete from execution where id in (select id from execution where user_id = ? and status = 'FINISHED' limit 100)`, [userId]);
      expect(Number((await f.client.listExecutions({ caller: caller(userId) })).total)).toBe(151);
      expect(Number((await f.client.listExecutions({ caller: caller(randomUUID(), 'ADMIN') })).total)).toBe(await count());
      await deleteExecutionsOfUser(f.deps, userId);
      expect(Number((await f.client.listExecutions({ caller: caller(userId) })).total)).toBe(0);
    });

    it('count rows whenever anything but the owner narrows the list', async () => {
      const { userId, script } = someone();
      await run(userId, script.scriptId);
      await run(userId, script.scriptId);
      await f.orm.em.fork().execute(`update execution set status = 'FAILED' where id = (select id from execution where user_id = ? limit 1)`, [userId]);
      expect(Number((await f.client.listExecutions({ caller: caller(userId), status: 'FAILED' })).total)).toBe(1);
      expect(Number((await f.client.listExecutions({ caller: caller(userId), filter: 'status=READY' })).total)).toBe(1);
      expect(Number((await f.client.listExecutions({ caller: caller(userId), scriptId: script.scriptId })).total)).toBe(2);
      // A USER naming someone else sees nothing of theirs.
      expect(Number((await f.client.listExecutions({ caller: caller(userId), userId: randomUUID() })).total)).toBe(0);
    });
  });
});
