import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase, unitOfWork } from '@gef/common/orm';
import { entities } from '../src/entities';
import { migrations } from '../src/migrations';
import { ArtifactReleaseRepository } from '../src/repositories/artifact-release-repository';
import { ScriptLogRepository } from '../src/repositories/script-log-repository';
import { ScriptRepository } from '../src/repositories/script-repository';
import { ScriptVersionRepository } from '../src/repositories/script-version-repository';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';

// The script service's repositories against a real PostgreSQL, with its migrations applied.
describe('script repositories', () => {
  let pg: TestPostgres;
  let orm: MikroORM;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_repositories');
    orm = await openDatabase({ url: pg.url, entities, migrations, logger: createLogger('script-test', 'silent') });
  }, 120_000);

  afterAll(async () => {
    await orm?.close();
    await pg?.stop();
  }, 60_000);

  const digest = (c: string) => c.repeat(64);

  /** Waits until some other session of the test database waits on a lock (row or advisory). */
  async function someoneWaitsOnALock(): Promise<void> {
    for (;;) {
      const rows = await orm.em.fork().execute<{ n: string }[]>(
        "select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
      );
      if (Number(rows[0]?.n) > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A script with versions 1..n (the last current). */
  async function scriptWith(options: { userId?: string; slug?: string; versions?: number; public?: boolean; digests?: string[] } = {}): Promise<string> {
    const id = randomUUID();
    await unitOfWork(orm, async (em) => {
      new ScriptRepository(em).create({
        id,
        slug: options.slug ?? `s-${id.slice(0, 8)}`,
        name: `Script ${id.slice(0, 8)}`,
        description: '',
        status: 'PENDING',
        public: options.public ?? false,
        userId: options.userId ?? randomUUID(),
        version: options.versions ?? 1,
        runtime: 'python3',
        cpuLimit: null,
        memoryLimit: null,
        timeout: null,
        paramsSchema: null,
      });
      await em.flush();
      const versions = new ScriptVersionRepository(em);
      for (let n = 1; n <= (options.versions ?? 1); n++) {
        versions.create({ scriptId: id, number: n, digest: options.digests?.[n - 1] ?? digest('0'), size: 10, configuration: { name: 'x' }, fileName: 'x.tar.gz', requirements: '' });
      }
      await em.flush();
    });
    return id;
  }

  describe('ScriptRepository', () => {
    it('finds by id (any case) or slug, and tells a taken slug', async () => {
      const id = await scriptWith({ slug: 'find-me' });
      await unitOfWork(orm, async (em) => {
        const repo = new ScriptRepository(em);
        expect((await repo.findByIdOrSlug(id))?.slug).toBe('find-me');
        expect((await repo.findByIdOrSlug(id.toUpperCase()))?.id).toBe(id);
        expect((await repo.findByIdOrSlug('find-me'))?.id).toBe(id);
        expect(await repo.findByIdOrSlug('no-such-slug')).toBeNull();
        expect(await repo.findByIdOrSlug(randomUUID())).toBeNull();
        expect(await repo.slugTaken('find-me')).toBe(true);
        expect(await repo.slugTaken('find-me-not')).toBe(false);
      });
    });

    it('refuses a second script with the same slug (the unique constraint)', async () => {
      await scriptWith({ slug: 'only-once' });
      await expect(scriptWith({ slug: 'only-once' })).rejects.toThrow(/unique|duplicate/i);
    });

    it('holds the row lock until the transaction ends: a second locker waits', async () => {
      const id = await scriptWith();
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const lockTaken = new Promise<void>((r) => (locked = r));
      const first = orm.em.fork().transactional(async (em) => {
        await new ScriptRepository(em).lockByIdOrSlug(id);
        order.push('first locked');
        locked();
        await held;
        order.push('first done');
      });
      await lockTaken;
      const second = orm.em.fork().transactional(async (em) => {
        await new ScriptRepository(em).lockByIdOrSlug(id);
        order.push('second locked');
      });
      // The second transaction is blocked on the lock until the first commits.
      await someoneWaitsOnALock();
      order.push('released');
      release();
      await Promise.all([first, second]);
      expect(order).toEqual(['first locked', 'released', 'first done', 'second locked']);
    });

    it('pages with a where clause, an order, a limit and an offset, and counts all', async () => {
      const userId = randomUUID();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await scriptWith({ userId, slug: `page-${i}` }));
      await unitOfWork(orm, async (em) => {
        const repo = new ScriptRepository(em);
        const page = await repo.page({ where: 's.user_id = ?', params: [userId], orderBy: 's.slug desc', limit: 2, offset: 1 });
        expect(page.total).toBe(5);
        expect(page.items.map((s) => s.slug)).toEqual(['page-3', 'page-2']);
        expect(page.items[0]).toMatchObject({ userId, status: 'PENDING', public: false, version: 1 });
        expect(page.items[0]!.createdAt).toBeInstanceOf(Date);
        expect((await repo.idsOfUser(userId)).sort()).toEqual([...ids].sort());
        expect(await repo.idsOfUser(randomUUID())).toEqual([]);
      });
    });

    it('deletes scripts with their versions and log lines (cascade)', async () => {
      const [a, b, kept] = [await scriptWith({ versions: 2 }), await scriptWith(), await scriptWith()];
      await unitOfWork(orm, async (em) => {
        const logs = new ScriptLogRepository(em);
        for (const id of [a, b, kept]) await logs.append(id, 1, ['Build: a line']);
        expect(await new ScriptRepository(em).deleteByIds([a, b])).toBe(2);
        expect(await new ScriptRepository(em).deleteByIds([])).toBe(0);
      });
      const rows = await orm.em.fork().execute<{ t: string; n: string }[]>(
        `select 'versions' as t, count(*) as n from script_version where script_id in (?, ?)
         union all select 'logs', count(*) from script_log where script_id in (?, ?)
         union all select 'kept', count(*) from script_log where script_id = ?`,
        [a, b, a, b, kept],
      );
      expect(Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]))).toEqual({ versions: 0, logs: 0, kept: 1 });
    });
  });

  describe('ScriptVersionRepository', () => {
    it('finds and locks versions, knows the latest number and the digests in use', async () => {
      const id = await scriptWith({ versions: 3, digests: [digest('a'), digest('b'), digest('a')] });
      const other = await scriptWith({ digests: [digest('c')] });
      await unitOfWork(orm, async (em) => {
        const repo = new ScriptVersionRepository(em);
        expect(await repo.find(id, 2)).toMatchObject({ scriptId: id, number: 2, digest: digest('b'), status: 'PENDING', environmentHash: null, builtAt: null, configuration: { name: 'x' } });
        expect(await repo.find(id, 4)).toBeNull();
        expect(await repo.latestNumber(id)).toBe(3);
        expect(await repo.latestNumber(randomUUID())).toBe(0);
        expect((await repo.digestsOf([id, other])).sort()).toEqual([digest('a'), digest('b'), digest('c')]);
        expect(await repo.digestsOf([])).toEqual([]);
        expect(await repo.isDigestUsed(digest('b'))).toBe(true);
        expect(await repo.isDigestUsed(digest('f'))).toBe(false);
      });
      await orm.em.fork().transactional(async (em) => {
        const version = await new ScriptVersionRepository(em).lock(id, 3);
        version!.status = 'SUCCESS';
        version!.environmentHash = digest('e');
        version!.builtAt = new Date();
        await em.flush();
      });
      expect(await new ScriptVersionRepository(orm.em.fork()).find(id, 3)).toMatchObject({ status: 'SUCCESS', environmentHash: digest('e'), builtAt: expect.any(Date) });
    });

    it('refuses a version number twice and a version of a script that does not exist', async () => {
      const id = await scriptWith();
      const insert = (scriptId: string, number: number) =>
        unitOfWork(orm, async (em) => {
          new ScriptVersionRepository(em).create({ scriptId, number, digest: digest('0'), size: 1, configuration: {}, fileName: 'x.tar.gz', requirements: '' });
          await em.flush();
        });
      await expect(insert(id, 1)).rejects.toThrow(/unique|duplicate/i);
      await expect(insert(randomUUID(), 1)).rejects.toThrow(/foreign key/i);
    });
  });

  describe('ScriptLogRepository', () => {
    it('appends lines in order with growing ids, dates to the millisecond, and the version', async () => {
      const id = await scriptWith();
      await unitOfWork(orm, async (em) => {
        const logs = new ScriptLogRepository(em);
        expect(await logs.append(id, 1, ['one', 'two', 'three'])).toBe(3);
        expect(await logs.append(id, null, ['four'])).toBe(1);
        expect(await logs.append(id, 1, [])).toBe(0);
      });
      const lines = await new ScriptLogRepository(orm.em.fork()).list(id, { limit: 100 });
      expect(lines.map((l) => [l.text, l.version])).toEqual([
        ['one', 1],
        ['two', 1],
        ['three', 1],
        ['four', null],
      ]);
      const ids = lines.map((l) => Number(l.id));
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      expect(new Set(ids).size).toBe(4);
      expect(lines.every((l) => l.scriptId === id && l.registerDate instanceof Date)).toBe(true);
      const raw = await orm.em.fork().execute<{ us: string }[]>(`select extract(microseconds from register_date)::bigint % 1000 as us from script_log where script_id = ?`, [id]);
      expect(raw.map((r) => Number(r.us))).toEqual([0, 0, 0, 0]);
    });

    it('cuts lines longer than 10,000 characters', async () => {
      const id = await scriptWith();
      await unitOfWork(orm, (em) => new ScriptLogRepository(em).append(id, 1, ['x'.repeat(20_000)]));
      const [line] = await new ScriptLogRepository(orm.em.fork()).list(id, { limit: 10 });
      expect(line!.text).toBe(`${'x'.repeat(10_000)}…`);
    });

    it('lists strictly after an id and/or an instant, oldest first, up to a limit', async () => {
      const id = await scriptWith();
      await unitOfWork(orm, (em) => new ScriptLogRepository(em).append(id, 1, ['a', 'b']));
      await new Promise((r) => setTimeout(r, 5));
      await unitOfWork(orm, (em) => new ScriptLogRepository(em).append(id, 1, ['c', 'd']));
      const repo = new ScriptLogRepository(orm.em.fork());
      const all = await repo.list(id, { limit: 100 });
      expect(all.map((l) => l.text)).toEqual(['a', 'b', 'c', 'd']);
      expect((await repo.list(id, { afterId: Number(all[1]!.id), limit: 100 })).map((l) => l.text)).toEqual(['c', 'd']);
      // Each line has its own instant (a and b may fall in different milliseconds); c and d came 5 ms after b.
      expect((await repo.list(id, { after: all[1]!.registerDate.toISOString(), limit: 100 })).map((l) => l.text)).toEqual(['c', 'd']);
      expect((await repo.list(id, { after: all[1]!.registerDate.toISOString(), afterId: Number(all[2]!.id), limit: 100 })).map((l) => l.text)).toEqual(['d']);
      expect((await repo.list(id, { limit: 3 })).map((l) => l.text)).toEqual(['a', 'b', 'c']);
      expect(await repo.list(randomUUID(), { limit: 100 })).toEqual([]);
    });

    it('dates each batch strictly after the last line, so polling with start= skips none', async () => {
      const id = await scriptWith();
      // Batches far quicker than a millisecond apart, in one transaction (as a build's
      // appends hold the script's row lock one after another).
      await unitOfWork(orm, async (em) => {
        const logs = new ScriptLogRepository(em);
        for (let b = 0; b < 100; b++) await logs.append(id, 1, [`b${b}.0`, `b${b}.1`]);
      });
      const lines = await new ScriptLogRepository(orm.em.fork()).list(id, { limit: 1000 });
      expect(lines).toHaveLength(200);
      for (let b = 1; b < 100; b++) {
        expect(lines[2 * b]!.registerDate.getTime()).toBeGreaterThan(lines[2 * b - 1]!.registerDate.getTime());
      }
      // A poller continuing after each batch's last date gets the next batch whole.
      const repo = new ScriptLogRepository(orm.em.fork());
      for (let b = 0; b < 99; b++) {
        const next = await repo.list(id, { after: lines[2 * b + 1]!.registerDate.toISOString(), limit: 2 });
        expect(next.map((l) => l.text)).toEqual([`b${b + 1}.0`, `b${b + 1}.1`]);
      }
    });

    it('gives the lines of several scripts grouped by script', async () => {
      const [a, b, none] = [await scriptWith(), await scriptWith(), await scriptWith()];
      await unitOfWork(orm, async (em) => {
        const logs = new ScriptLogRepository(em);
        await logs.append(a, 1, ['a1']);
        await logs.append(b, 1, ['b1', 'b2']);
        await logs.append(a, 1, ['a2']);
      });
      const roomy = { limitEach: 100, bytesEach: 1000, maxBytes: 1000 };
      const grouped = await new ScriptLogRepository(orm.em.fork()).forScripts([a, b, none], roomy);
      expect(Object.fromEntries([...grouped].map(([k, v]) => [k, v.map((l) => l.text)]))).toEqual({ [a]: ['a1', 'a2'], [b]: ['b1', 'b2'] });
      expect((await new ScriptLogRepository(orm.em.fork()).forScripts([], roomy)).size).toBe(0);
      // At most so many lines of each, the oldest.
      const firstOnly = await new ScriptLogRepository(orm.em.fork()).forScripts([a, b, none], { ...roomy, limitEach: 1 });
      expect(Object.fromEntries([...firstOnly].map(([k, v]) => [k, v.map((l) => l.text)]))).toEqual({ [a]: ['a1'], [b]: ['b1'] });
    });

    it('reads long lines within a byte budget: a page, and the lines of several scripts', async () => {
      const [a, b] = [await scriptWith(), await scriptWith()];
      const long = (tag: string) => tag + 'x'.repeat(9_000);
      await unitOfWork(orm, async (em) => {
        const logs = new ScriptLogRepository(em);
        await logs.append(a, 1, [long('a1'), long('a2'), long('a3'), long('a4')]);
        await logs.append(b, 1, [long('b1'), long('b2')]);
      });
      const repo = new ScriptLogRepository(orm.em.fork());
      const page = await repo.page(a, { limit: 1000, maxBytes: 20_000 });
      expect(page.lines.map((l) => l.text.slice(0, 2))).toEqual(['a1', 'a2']);
      expect(page.full).toBe(true);
      // At least one line, however long.
      expect((await repo.page(a, { limit: 1000, maxBytes: 10 })).lines).toHaveLength(1);
      expect((await repo.page(b, { limit: 1000, maxBytes: 1_000_000 })).full).toBe(false);
      // Each script its share, the answer its whole budget: the last script runs out first.
      const shared = await repo.forScripts([a, b], { limitEach: 100, bytesEach: 20_000, maxBytes: 27_500 });
      expect(Object.fromEntries([...shared].map(([k, v]) => [k, v.map((l) => l.text.slice(0, 2))]))).toEqual({ [a]: ['a1', 'a2'], [b]: ['b1'] });
    });
  });

  describe('ArtifactReleaseRepository', () => {
    it('queues digests once, lists them oldest first and forgets them', async () => {
      await unitOfWork(orm, async (em) => {
        const releases = new ArtifactReleaseRepository(em);
        await releases.queue([digest('1'), digest('2')]);
        await releases.queue([digest('2'), digest('3')]);
        await releases.queue([]);
      });
      const releases = new ArtifactReleaseRepository(orm.em.fork());
      const pending = await releases.pending();
      expect(pending.filter((d) => [digest('1'), digest('2'), digest('3')].includes(d)).sort()).toEqual([digest('1'), digest('2'), digest('3')]);
      for (const d of pending) await releases.forget(d);
      expect(await releases.pending()).toEqual([]);
    });

    it('serialises work on one digest: a second transaction waits for the digest lock', async () => {
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const lockTaken = new Promise<void>((r) => (locked = r));
      const first = orm.em.fork().transactional(async (em) => {
        await new ArtifactReleaseRepository(em).lockDigest(digest('9'));
        order.push('first locked');
        locked();
        await held;
        order.push('first done');
      });
      await lockTaken;
      const second = orm.em.fork().transactional(async (em) => {
        await new ArtifactReleaseRepository(em).lockDigest(digest('9'));
        order.push('second locked');
      });
      const otherDigest = orm.em.fork().transactional(async (em) => {
        await new ArtifactReleaseRepository(em).lockDigest(digest('8'));
        order.push('other digest locked');
      });
      await otherDigest;
      await someoneWaitsOnALock();
      order.push('released');
      release();
      await Promise.all([first, second]);
      expect(order).toEqual(['first locked', 'other digest locked', 'released', 'first done', 'second locked']);
    });
  });
});
