import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { deleteExecutionsOfUser } from '../src/domain/delete-executions';
import { DeletedUserRepository } from '../src/repositories/deleted-user-repository';
import { ExecutionLogRepository } from '../src/repositories/execution-log-repository';
import { ExecutionRepository } from '../src/repositories/execution-repository';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';

/**
 * CONTRACT §4: deleting a user removes their executions and leaves no half user. The
 * gateway's revocation of the user's token takes a moment to reach every replica, so a
 * run may still come in while (or after) the deleteUser step runs here: one accepted before
 * the step records the user is found and deleted by it, one after is refused. Real
 * PostgreSQL.
 */
describe('runs of a user being deleted', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_deleted_user');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const rowsOf = async (userId: string) =>
    Number(
      (
        await f.orm.em
          .fork()
          .execute<{ n: string }[]>(
            'select (select count(*) from execution where user_id = ?) + (select count(*) from execution_dispatch where input->>\'userId\' = ?) as n',
            [userId, userId],
          )
      )[0]!.n,
    );

  const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => ConnectError.from(e));

  it.each(['USER', 'ADMIN'] as const)('refuses a run (role %s) that comes after the deletion step, storing nothing', async (role) => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: randomUUID(), public: true });
    const run = () => f.client.runScript({ caller: caller(userId, role), idOrSlug: script.scriptId, params: {} });
    await run();
    expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(1);
    // The token was still taken by a gateway replica the revocation had not reached.
    expect(await refusal(run())).toMatchObject({ code: Code.Unauthenticated, rawMessage: 'The user has been deleted' });
    expect(await rowsOf(userId)).toBe(0);
    // The step, retried, still finds nothing and refuses nothing it should not.
    expect(await deleteExecutionsOfUser(f.deps, userId)).toBe(0);
  });

  it('deletes a run whose accept had not committed when the step began', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    // A run being accepted: its insert done, its transaction not committed yet.
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const insertDone = new Promise<void>((resolve) => (inserted = resolve));
    const accepting = f.orm.em.fork().transactional(async (em) => {
      await new ExecutionRepository(em).insert({ id: randomUUID(), scriptId: script.scriptId, userId, params: {}, scriptVersion: 1 });
      inserted();
      await committed;
    });
    await insertDone;
    let finished = false;
    const deleting = deleteExecutionsOfUser(f.deps, userId).then((n) => {
      finished = true;
      return n;
    });
    await new Promise((r) => setTimeout(r, 300));
    const waited = !finished;
    commit();
    await accepting;
    expect(await deleting).toBe(1);
    expect(waited).toBe(true);
    expect(await rowsOf(userId)).toBe(0);
  });

  it('makes a run that comes while the user is being recorded wait, then refuses it', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let recorded!: () => void;
    const recordDone = new Promise<void>((resolve) => (recorded = resolve));
    const recording = f.orm.em.fork().transactional(async (em) => {
      await new DeletedUserRepository(em).record(userId);
      recorded();
      await committed;
    });
    await recordDone;
    let answered = false;
    const running = refusal(f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).then((e) => {
      answered = true;
      return e;
    });
    await new Promise((r) => setTimeout(r, 300));
    const waited = !answered;
    commit();
    await recording;
    expect(await running).toMatchObject({ code: Code.Unauthenticated });
    expect(waited).toBe(true);
    expect(await rowsOf(userId)).toBe(0);
  });

  it("leaves other users' runs, and their own runs of the deleted user's scripts, alone", async () => {
    const gone = randomUUID();
    const other = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: gone, public: true });
    const theirs = (await f.client.runScript({ caller: caller(other), idOrSlug: script.scriptId, params: {} })).execution!;
    await deleteExecutionsOfUser(f.deps, gone);
    const again = (await f.client.runScript({ caller: caller(other), idOrSlug: script.scriptId, params: {} })).execution!;
    const admin = (await f.client.runScript({ caller: caller(randomUUID(), 'ADMIN'), idOrSlug: script.scriptId, params: {} })).execution!;
    for (const e of [theirs, again, admin]) expect((await f.client.getExecution({ id: e.id, caller: caller(randomUUID(), 'ADMIN') })).execution!.id).toBe(e.id);
    expect(await rowsOf(other)).toBe(4);
  });

  it("deletes long logs a bounded number of lines per statement, before the runs, leaving others' lines", async () => {
    const gone = randomUUID();
    const other = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: randomUUID(), public: true });
    const runOf = async (userId: string) => (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!.id;
    const [a, b, kept] = [await runOf(gone), await runOf(gone), await runOf(other)];
    const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ seq: i, level: 'INFO' as const, text: `line ${i}` }));
    for (const id of [a, b, kept]) await new ExecutionLogRepository(f.orm.em.fork()).append(id, 1, lines(10));
    const logRows = async (id: string) => Number((await f.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from execution_log where execution_id = ?', [id]))[0]!.n);
    const before = await logRows(kept);
    const deletes = jest.spyOn(ExecutionLogRepository.prototype, 'deleteSomeOf');
    try {
      expect(await deleteExecutionsOfUser(f.deps, gone, undefined, 7)).toBe(2);
      // At least their 20 lines, 7 a statement; then the statement that finds none left.
      expect(deletes.mock.calls.length).toBeGreaterThanOrEqual(3);
      expect(deletes.mock.calls.every(([, limit]) => limit === 7)).toBe(true);
    } finally {
      deletes.mockRestore();
    }
    for (const id of [a, b]) expect(await logRows(id)).toBe(0);
    expect(await rowsOf(gone)).toBe(0);
    expect(await logRows(kept)).toBe(before);
  });
});
