import fs from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import type { EntityManager } from '@gef/common/orm';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import type { LocalArtifactStore } from '../src/artifacts/local-artifact-store';
import { deleteScript, deleteScriptsOfUser } from '../src/domain/script-changes';
import { DeletedUserRepository } from '../src/repositories/deleted-user-repository';
import { ScriptLogRepository } from '../src/repositories/script-log-repository';
import { caller, createMessages, serviceFixture, updateMessages, type ServiceFixture } from './support/service-fixture';
import { cliLayout, gzip, tar } from './support/tar-writer';

const archive = (name: string) => gzip(tar(cliLayout({ name }, '')));
const digestOf = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * CONTRACT §4: deleting a user removes their scripts and leaves no half user. The
 * gateway's revocation of the user's token takes a moment to reach every replica, and an
 * upload's last check there comes before this service stores it: an upload may come in
 * while (or after) the deleteUser step runs here. One stored before the step records the
 * user is found and deleted by it (with its archive), one after is refused and leaves
 * nothing. Real PostgreSQL and the local artifact store.
 */
describe('uploads of a user being deleted', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_deleted_user');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const scriptsOf = async (userId: string) =>
    Number((await f.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from script where user_id = ?', [userId]))[0]!.n);
  const stored = (digest: string) => fs.existsSync((f.deps.store as LocalArtifactStore).pathOf(digest));
  const create = (userId: string, bytes: Buffer) => f.client.createScript(createMessages({ caller: caller(userId), fileName: 'upload.tar.gz' }, bytes));
  const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => ConnectError.from(e));

  /**
   * Holds the lock of an archive's digest until `release` is called: an upload of that
   * archive stops there, its script and version written but not committed.
   */
  async function holdDigest(digest: string): Promise<{ release: () => Promise<void> }> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holding = f.orm.em.fork().transactional(async (em: EntityManager) => {
      await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`artifact:${digest}`]);
      locked();
      await released;
    });
    await lockTaken;
    return {
      release: async () => {
        release();
        await holding;
      },
    };
  }

  /** Until some transaction waits for an advisory lock (an upload stopped at its digest). */
  async function untilWaitingOnLock(): Promise<void> {
    const end = Date.now() + 10_000;
    for (;;) {
      const rows = await f.orm.em.fork().execute("select 1 from pg_locks where locktype = 'advisory' and not granted");
      if (rows.length > 0) return;
      if (Date.now() > end) throw new Error('no upload waits for its digest');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('refuses an upload that comes after the deletion step, leaving nothing', async () => {
    const userId = randomUUID();
    await create(userId, archive(`Before ${userId}`));
    expect(await deleteScriptsOfUser(f.deps, userId)).toBe(1);
    const late = archive(`After ${userId}`);
    // The token was still taken by a gateway replica the revocation had not reached.
    expect(await refusal(create(userId, late))).toMatchObject({ code: Code.Unauthenticated, rawMessage: 'The user has been deleted' });
    expect(await scriptsOf(userId)).toBe(0);
    expect(stored(digestOf(late))).toBe(false);
    expect(await deleteScriptsOfUser(f.deps, userId)).toBe(0);
  });

  it('deletes, with its archive, an upload being stored when the step began', async () => {
    const userId = randomUUID();
    const bytes = archive(`Racing Upload ${userId}`);
    const digest = digestOf(bytes);
    const held = await holdDigest(digest);
    const uploading = create(userId, bytes);
    await untilWaitingOnLock();
    const deleting = deleteScriptsOfUser(f.deps, userId);
    await new Promise((r) => setTimeout(r, 200));
    await held.release();
    await uploading;
    expect(await deleting).toBe(1);
    expect(await scriptsOf(userId)).toBe(0);
    expect(stored(digest)).toBe(false);
  });

  it("releases the archive of a new version being added when the step began", async () => {
    const userId = randomUUID();
    const first = archive(`Versioned ${userId}`);
    const created = (await create(userId, first)).script!;
    const second = archive(`Versioned Two ${userId}`);
    const held = await holdDigest(digestOf(second));
    const updating = f.client.updateScript(updateMessages({ caller: caller(userId), fileName: 'v2.tar.gz', idOrSlug: created.id }, second));
    await untilWaitingOnLock();
    const deleting = deleteScriptsOfUser(f.deps, userId);
    await new Promise((r) => setTimeout(r, 200));
    await held.release();
    await updating;
    expect(await deleting).toBe(1);
    expect(await scriptsOf(userId)).toBe(0);
    expect([stored(digestOf(first)), stored(digestOf(second))]).toEqual([false, false]);
  });

  it('makes an upload that comes while the user is being recorded wait, then refuses it', async () => {
    const userId = randomUUID();
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let recorded!: () => void;
    const recordDone = new Promise<void>((resolve) => (recorded = resolve));
    const recording = f.orm.em.fork().transactional(async (em: EntityManager) => {
      await new DeletedUserRepository(em).record(userId);
      recorded();
      await committed;
    });
    await recordDone;
    const bytes = archive(`Waiting Upload ${userId}`);
    let answered = false;
    const uploading = refusal(create(userId, bytes)).then((e) => {
      answered = true;
      return e;
    });
    await new Promise((r) => setTimeout(r, 300));
    const waited = !answered;
    commit();
    await recording;
    expect(await uploading).toMatchObject({ code: Code.Unauthenticated });
    expect(waited).toBe(true);
    expect(await scriptsOf(userId)).toBe(0);
    expect(stored(digestOf(bytes))).toBe(false);
  });

  it('leaves the uploads of other users alone', async () => {
    const gone = randomUUID();
    const other = randomUUID();
    await deleteScriptsOfUser(f.deps, gone);
    expect((await create(other, archive(`Someone Else ${other}`))).script!.userId).toBe(other);
    expect(await scriptsOf(other)).toBe(1);
  });

  it("deletes long build logs a bounded number of lines per statement, then the scripts, leaving others' lines", async () => {
    const gone = randomUUID();
    const other = randomUUID();
    const mine = [(await create(gone, archive(`Long Log A ${gone}`))).script!.id, (await create(gone, archive(`Long Log B ${gone}`))).script!.id];
    const theirs = (await create(other, archive(`Long Log C ${other}`))).script!.id;
    const theirsToo = (await create(other, archive(`Long Log D ${other}`))).script!.id;
    for (const id of [...mine, theirs, theirsToo]) await new ScriptLogRepository(f.orm.em.fork()).append(id, 1, Array.from({ length: 10 }, (_, i) => `line ${i}`));
    const lines = async (id: string) => Number((await f.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from script_log where script_id = ?', [id]))[0]!.n);
    const before = await lines(theirs);
    const deletes = jest.spyOn(ScriptLogRepository.prototype, 'deleteSomeOf');
    let chunks = 0;
    try {
      expect(await deleteScriptsOfUser(f.deps, gone, () => chunks++, 7)).toBe(2);
      // At least their 22 lines (one received line each, and ten), 7 a statement; then one finding none.
      expect(deletes.mock.calls.length).toBeGreaterThanOrEqual(4);
      expect(deletes.mock.calls.every(([, limit]) => limit === 7)).toBe(true);
      // After each statement of the logs, and once the scripts are gone.
      expect(chunks).toBe(deletes.mock.calls.length + 1);
      deletes.mockClear();
      // One script, by its owner, the same way.
      await deleteScript(f.deps, { userId: other, role: 'USER' }, theirsToo, 4);
      expect(deletes.mock.calls.length).toBeGreaterThanOrEqual(3);
    } finally {
      deletes.mockRestore();
    }
    for (const id of [...mine, theirsToo]) expect(await lines(id)).toBe(0);
    expect(await scriptsOf(gone)).toBe(0);
    expect(await lines(theirs)).toBe(before);
  });
});
