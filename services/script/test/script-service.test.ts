import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { script } from '@gef/protos';
import { releaseArtifacts } from '../src/domain/artifact-release';
import { signBuildToken } from '../src/domain/build-token';
import { finishScriptBuild, resumeBuilds, startScriptBuild } from '../src/domain/script-builds';
import { deleteScriptsOfUser } from '../src/domain/script-changes';
import { ScriptLogRepository } from '../src/repositories/script-log-repository';
import { unitOfWork } from '@gef/common/orm';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { buildTokenSecret, caller, createMessages, serviceFixture, updateMessages, type ServiceFixture } from './support/service-fixture';
import { cliLayout, gzip, tar } from './support/tar-writer';

const S = script.ScriptStatus;

async function codeOf(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error('expected the call to fail');
}

const archive = (name: string, requirements = '') => gzip(tar(cliLayout({ name }, requirements)));

// The script service's RPCs and build steps over a real PostgreSQL, with the local artifact
// store in a temporary directory (Temporal faked: the build steps are called as the
// buildScript workflow would).
describe('script service', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_test');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const rows = async (sql: string, params: unknown[] = []) => f.orm.em.fork().execute<Record<string, unknown>[]>(sql, params);
  const artifactFiles = () => (fs.existsSync(f.artifacts) ? fs.readdirSync(f.artifacts, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)) : []);

  async function upload(userId: string, name: string, requirements = ''): Promise<script.Script> {
    const res = await f.client.createScript(createMessages({ caller: caller(userId), fileName: `${name}.tar.gz` }, archive(name, requirements)));
    await f.dispatch();
    return res.script!;
  }

  const append = (ref: { scriptId: string; version: number }, buildToken: string, lines: string[]) =>
    f.client.appendBuildLog(create(script.AppendBuildLogRequestSchema, { ...ref, buildToken, lines }));

  const logTexts = async (id: string, userId: string) =>
    (await f.client.listScriptLogs(create(script.ListScriptLogsRequestSchema, { idOrSlug: id, caller: caller(userId) }))).logs.map((l) => l.text);

  it("embeds a script's first 1,000 build lines, ending on a whole instant, so a client continuing with start= skips none", async () => {
    const userId = randomUUID();
    const created = await upload(userId, 'Long Log Script');
    await unitOfWork(f.orm, async (em) => {
      const logs = new ScriptLogRepository(em);
      await logs.append(created.id, 1, Array.from({ length: 995 }, (_, i) => `line ${i}`));
      // One batch, one instant, across the 1,000th line.
      await logs.append(created.id, 1, Array.from({ length: 10 }, (_, i) => `batch ${i}`));
    });
    // Lines are dated as they are inserted: make the batch one instant even when the clock
    // passed a millisecond during its insert.
    await rows(
      `update script_log set register_date = (select max(register_date) from script_log where script_id = ? and text like 'batch %')
       where script_id = ? and text like 'batch %'`,
      [created.id, created.id],
    );
    const got = await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: created.id, caller: caller(userId), includeLogs: true }));
    const texts = got.script!.logs.map((l) => l.text);
    expect(texts.at(-1)).toBe('line 994');
    expect(texts.some((t) => t.startsWith('batch'))).toBe(false);
    // Continuing after the last date read gets the whole batch.
    const next = await f.client.listScriptLogs(create(script.ListScriptLogsRequestSchema, { idOrSlug: created.id, caller: caller(userId), start: got.script!.logs.at(-1)!.registerDate! }));
    expect(next.logs.map((l) => l.text)).toEqual(Array.from({ length: 10 }, (_, i) => `batch ${i}`));
  });

  it('records an upload as version 1, PENDING, stores the archive by digest and starts its build', async () => {
    const userId = randomUUID();
    const created = await upload(userId, 'Stored Script');
    expect(created).toMatchObject({ name: 'Stored Script', slug: 'stored-script', status: S.PENDING, version: 1, userId, public: false });
    expect(f.builds.launched).toContainEqual({ scriptId: created.id, version: 1 });
    const [version] = await rows('select number, digest, size, status, file_name, requirements from script_version where script_id = ?', [created.id]);
    expect(version).toMatchObject({ number: 1, status: 'PENDING', file_name: 'Stored Script.tar.gz', requirements: '' });
    const digest = String(version!['digest']).trim();
    expect(artifactFiles().some((file) => file.endsWith(digest.slice(2)))).toBe(true);
    expect(await logTexts(created.id, userId)).toEqual([expect.stringMatching(/^Build: version 1 received: Stored Script\.tar\.gz, \d+ bytes, 5 members, sha256 [0-9a-f]{64}$/)]);
  });

  it('refuses a hostile archive with InvalidArgument, recording nothing', async () => {
    const userId = randomUUID();
    const before = artifactFiles();
    const hostile = gzip(tar([...cliLayout({ name: 'Hostile' }), { name: '../evil.py', data: 'x' }]));
    const refused = await codeOf(f.client.createScript(createMessages({ caller: caller(userId), fileName: 'hostile.tar.gz' }, hostile)));
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(await rows('select id from script where user_id = ?', [userId])).toEqual([]);
    expect(artifactFiles()).toEqual(before);
  });

  it('refuses what its columns cannot hold with InvalidArgument (invalid_archive), recording nothing', async () => {
    const userId = randomUUID();
    const refusedUpload = (config: Record<string, unknown>, requirements = '') =>
      codeOf(f.client.createScript(createMessages({ caller: caller(userId), fileName: 'x.tar.gz' }, gzip(tar(cliLayout(config, requirements))))));
    const cases = [
      [await refusedUpload({ name: 'Too Long', timeout: 3_000_000_000 }), /'timeout' must be at most 604800 seconds/],
      [await refusedUpload({ name: 'Nul \u0000 Name' }), /configuration\.json: 'name' holds a NUL character/],
      [await refusedUpload({ name: 'Nul Extra', extra: { 'k\u0000': 'v' } }), /the key 'extra\.k\?' holds/],
      [await refusedUpload({ name: 'Lone Surrogate', params_schema: { title: '\ud800' } }), /'params_schema\.title' holds .* an unpaired surrogate/],
      [await refusedUpload({ name: 'Nul Requirements' }, 'numpy\0\n'), /requirements\.txt holds a NUL character/],
      [await codeOf(f.client.createScript(createMessages({ caller: caller(userId), fileName: 'a\u0000.tar.gz' }, archive('Nul File Name')))), /file name holds a NUL character/],
    ] as const;
    expect(cases.map(([refused]) => refused)).toEqual(cases.map(([, message]) => ({ code: Code.InvalidArgument, message: expect.stringMatching(message) })));
    expect(await rows('select id from script where user_id = ?', [userId])).toEqual([]);
    // The longest timeout is stored.
    const longest = await f.client.createScript(createMessages({ caller: caller(userId), fileName: 'x.tar.gz' }, gzip(tar(cliLayout({ name: 'A Week', timeout: 604_800 })))));
    expect(longest.script).toMatchObject({ timeout: 604_800 });
  });

  describe('a build', () => {
    let userId: string;
    let scriptId: string;

    beforeAll(async () => {
      userId = randomUUID();
      scriptId = (await upload(userId, 'Built Script', 'six\n')).id;
    });

    it('starts: BUILDING, with what to build and a build token for this version only', async () => {
      const plan = await startScriptBuild(f.deps, { scriptId, version: 1 });
      expect(plan).toMatchObject({ proceed: true, runtime: 'python3', buildToken: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/) });
      const got = await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }));
      expect(got.script!.status).toBe(S.BUILDING);
      expect((await logTexts(scriptId, userId)).at(-1)).toBe('Build: started for version 1 (python3)');
    });

    it('takes log lines from the holder of its build token only', async () => {
      const token = await signBuildToken(buildTokenSecret, { scriptId, version: 1 });
      const before = await logTexts(scriptId, userId);
      expect((await codeOf(append({ scriptId, version: 1 }, '', ['no token']))).code).toBe(Code.Unauthenticated);
      expect((await codeOf(append({ scriptId, version: 1 }, 'forged.token.value', ['forged']))).code).toBe(Code.Unauthenticated);
      const otherKey = await signBuildToken('another-secret-of-enough-length', { scriptId, version: 1 });
      expect((await codeOf(append({ scriptId, version: 1 }, otherKey, ['other key']))).code).toBe(Code.Unauthenticated);
      // A token of this build used for another script, or another version of this one.
      const other = await upload(userId, 'Other Built Script');
      await startScriptBuild(f.deps, { scriptId: other.id, version: 1 });
      expect((await codeOf(append({ scriptId: other.id, version: 1 }, token, ['elsewhere']))).code).toBe(Code.PermissionDenied);
      expect((await codeOf(append({ scriptId, version: 2 }, token, ['another version']))).code).toBe(Code.PermissionDenied);
      expect(await logTexts(scriptId, userId)).toEqual(before);

      const res = await append({ scriptId, version: 1 }, token, ['Collecting six', 'two\nlines\u0007 ']);
      expect(res.appended).toBe(2);
      expect((await logTexts(scriptId, userId)).slice(before.length)).toEqual(['Build: Collecting six', 'Build: two lines']);
    });

    it('stores numbered lines sent again (an answer lost) once, and each attempt\'s apart; refuses numbers no column holds', async () => {
      const token = await signBuildToken(buildTokenSecret, { scriptId, version: 1 });
      const before = await logTexts(scriptId, userId);
      const numbered = (attempt: number, firstSeq: number, lines: string[]) =>
        f.client.appendBuildLog(create(script.AppendBuildLogRequestSchema, { scriptId, version: 1, buildToken: token, lines, attempt, firstSeq }));
      expect((await numbered(1, 1, ['Collecting pip', 'Downloading pip'])).appended).toBe(2);
      // The same batch again, then one overlapping it: only what is new is stored.
      expect((await numbered(1, 1, ['Collecting pip', 'Downloading pip'])).appended).toBe(0);
      expect((await numbered(1, 2, ['Downloading pip', 'Installing pip'])).appended).toBe(1);
      // A second attempt numbers from 1 again.
      expect((await numbered(2, 1, ['Collecting pip'])).appended).toBe(1);
      expect((await logTexts(scriptId, userId)).slice(before.length)).toEqual(['Build: Collecting pip', 'Build: Downloading pip', 'Build: Installing pip', 'Build: Collecting pip']);
      expect((await codeOf(numbered(1, 2_147_483_647, ['one too many']))).code).toBe(Code.InvalidArgument);
    });

    it("numbers each workflow run's lines apart: a build started again under a new run keeps its first lines", async () => {
      const token = await signBuildToken(buildTokenSecret, { scriptId, version: 1 });
      const before = await logTexts(scriptId, userId);
      const numbered = (buildRun: string, attempt: number, firstSeq: number, lines: string[]) =>
        f.client.appendBuildLog(create(script.AppendBuildLogRequestSchema, { scriptId, version: 1, buildToken: token, lines, attempt, firstSeq, buildRun }));
      const [first, second] = [randomUUID(), randomUUID()];
      expect((await numbered(first, 1, 1, ['checking src/main.py', 'preparing the environment'])).appended).toBe(2);
      // The workflow terminated in Temporal and resumed: a new run, attempt 1 again, lines from 1 again.
      expect((await numbered(second, 1, 1, ['checking src/main.py', 'preparing the environment', 'Collecting six'])).appended).toBe(3);
      // Each run's batches sent again are still stored once (any case of the run id).
      expect((await numbered(second.toUpperCase(), 1, 2, ['preparing the environment', 'Collecting six'])).appended).toBe(0);
      expect((await numbered(first, 1, 1, ['checking src/main.py'])).appended).toBe(0);
      expect((await logTexts(scriptId, userId)).slice(before.length)).toEqual([
        'Build: checking src/main.py',
        'Build: preparing the environment',
        'Build: checking src/main.py',
        'Build: preparing the environment',
        'Build: Collecting six',
      ]);
      expect((await codeOf(numbered('not-a-run', 1, 1, ['forged']))).code).toBe(Code.InvalidArgument);
    });

    it('ends SUCCESS with the environment hash; later lines and a second start are dropped', async () => {
      const token = await signBuildToken(buildTokenSecret, { scriptId, version: 1 });
      await finishScriptBuild(f.deps, { scriptId, version: 1, status: 'SUCCESS', environmentHash: 'e'.repeat(64) });
      // Idempotent: a repeated finish changes nothing.
      await finishScriptBuild(f.deps, { scriptId, version: 1, status: 'FAIL', reason: 'late' });
      const forRun = await f.client.getScriptForRun(create(script.GetScriptForRunRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }));
      expect(forRun.run).toMatchObject({ status: S.SUCCESS, version: 1, environmentHash: 'e'.repeat(64), requirements: 'six\n' });
      const texts = await logTexts(scriptId, userId);
      expect(texts.at(-1)).toBe(`Build: SUCCESS: version 1 is ready (environment ${'e'.repeat(12)})`);
      expect(texts.filter((t) => /SUCCESS|FAIL/.test(t))).toHaveLength(1);
      expect((await append({ scriptId, version: 1 }, token, ['too late'])).appended).toBe(0);
      expect(await startScriptBuild(f.deps, { scriptId, version: 1 })).toEqual({ proceed: false, reason: 'the build already ended SUCCESS' });
    });

    it('is read for a run by id (any case) or slug, by its owner only while private', async () => {
      const forRun = (idOrSlug: string, who = caller(userId)) => f.client.getScriptForRun(create(script.GetScriptForRunRequestSchema, { idOrSlug, caller: who }));
      const byId = await forRun(scriptId.toUpperCase());
      expect(await forRun('built-script')).toEqual(byId);
      expect(byId.run!.script).toMatchObject({ id: scriptId, slug: 'built-script', userId, version: 1 });
      expect(byId.run).toMatchObject({ version: 1, status: S.SUCCESS, environmentHash: 'e'.repeat(64) });
      expect(byId.run!.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(byId.run!.size).toBeGreaterThan(0n);
      expect((await codeOf(forRun(scriptId, caller(randomUUID())))).code).toBe(Code.NotFound);
      expect((await codeOf(forRun('no-such-script'))).code).toBe(Code.NotFound);
      // No script has a blank slug: a blank key is one that names no script.
      expect((await codeOf(forRun('  '))).code).toBe(Code.NotFound);
      expect((await codeOf(f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: ' ', caller: caller(userId) })))).code).toBe(Code.NotFound);
    });

    it('of a version that is no longer current leaves the script and its log to its current version', async () => {
      const v2 = await f.client.updateScript(updateMessages({ caller: caller(userId), fileName: 'v2.tar.gz', idOrSlug: scriptId }, archive('Built Script Renamed', 'six\n')));
      expect(v2.script).toMatchObject({ version: 2, status: S.PENDING, slug: 'built-script', name: 'Built Script Renamed' });
      await f.dispatch();
      expect(f.builds.launched).toContainEqual({ scriptId, version: 2 });
      await startScriptBuild(f.deps, { scriptId, version: 2 });
      // Version 3 arrives while version 2 builds; then version 2's build ends.
      const v3 = await f.client.updateScript(updateMessages({ caller: caller(userId), fileName: 'v3.tar.gz', idOrSlug: scriptId }, archive('Built Script Three')));
      expect(v3.script).toMatchObject({ version: 3, status: S.PENDING, slug: 'built-script' });
      await finishScriptBuild(f.deps, { scriptId, version: 2, status: 'FAIL', reason: 'pip install failed:\nno such package' });
      const got = await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }));
      expect(got.script).toMatchObject({ status: S.PENDING, version: 3 });
      // Version 2's outcome is its own: after version 3 arrived, the log is about version 3.
      const texts = await logTexts(scriptId, userId);
      expect(texts.at(-1)).toMatch(/^Build: version 3 received: v3\.tar\.gz, /);
      expect(texts.filter((t) => t.includes('pip install failed'))).toEqual([]);
      await startScriptBuild(f.deps, { scriptId, version: 3 });
      await finishScriptBuild(f.deps, { scriptId, version: 3, status: 'SUCCESS', environmentHash: 'f'.repeat(64) });
      expect((await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }))).script).toMatchObject({ status: S.SUCCESS, version: 3 });
      const versions = await rows('select number, status, environment_hash from script_version where script_id = ? order by number', [scriptId]);
      expect(versions).toEqual([
        { number: 1, status: 'SUCCESS', environment_hash: 'e'.repeat(64) },
        { number: 2, status: 'FAIL', environment_hash: null },
        { number: 3, status: 'SUCCESS', environment_hash: 'f'.repeat(64) },
      ]);
    });

    it('of a deleted script or version is skipped', async () => {
      expect(await startScriptBuild(f.deps, { scriptId: randomUUID(), version: 1 })).toEqual({ proceed: false, reason: 'the script was deleted' });
      expect(await startScriptBuild(f.deps, { scriptId, version: 9 })).toEqual({ proceed: false, reason: 'the version was deleted' });
      await expect(finishScriptBuild(f.deps, { scriptId: randomUUID(), version: 1, status: 'SUCCESS' })).resolves.toBeUndefined();
    });
  });

  it("keeps a replaced version's build that ends late out of the log: the current version's reason stays the last line", async () => {
    const userId = randomUUID();
    const { id: scriptId } = await upload(userId, 'Slow Then Fast');
    const v1 = { scriptId, version: 1 };
    const v1Token = await signBuildToken(buildTokenSecret, v1);
    await startScriptBuild(f.deps, v1);
    expect((await append(v1, v1Token, ['Collecting numpy'])).appended).toBe(1);
    // Version 2 arrives while version 1 builds, and fails at once.
    await f.client.updateScript(updateMessages({ caller: caller(userId), fileName: 'v2.tar.gz', idOrSlug: scriptId }, archive('Slow Then Fast')));
    await f.dispatch();
    await startScriptBuild(f.deps, { scriptId, version: 2 });
    await finishScriptBuild(f.deps, { scriptId, version: 2, status: 'FAIL', reason: 'src/main.py does not compile' });
    // Then version 1's output and outcome.
    expect((await append(v1, v1Token, ['Installing collected packages: numpy'])).appended).toBe(0);
    await finishScriptBuild(f.deps, { ...v1, status: 'SUCCESS', environmentHash: 'a'.repeat(64) });

    const got = await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }));
    expect(got.script).toMatchObject({ status: S.FAIL, version: 2 });
    const texts = await logTexts(scriptId, userId);
    expect(texts.slice(texts.findIndex((t) => t.startsWith('Build: version 2 received')))).toEqual([
      expect.stringMatching(/^Build: version 2 received: v2\.tar\.gz, /),
      'Build: started for version 2 (python3)',
      'Build: FAIL: src/main.py does not compile',
    ]);
    // Version 1's outcome is recorded on its own row.
    expect(await rows('select number, status from script_version where script_id = ? order by number', [scriptId])).toEqual([
      { number: 1, status: 'SUCCESS' },
      { number: 2, status: 'FAIL' },
    ]);
  });

  describe('a change of a script deleted while the change waits for its row', () => {
    /** Resolves once a statement of this database waits for a lock. */
    async function untilALockIsAwaited(): Promise<void> {
      for (let tries = 0; tries < 1000; tries++) {
        if ((await rows("select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).length > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('no statement waited for the row lock');
    }

    it.each<[string, (idOrSlug: string, userId: string) => Promise<unknown>]>([
      ['publish', (idOrSlug, userId) => f.client.setScriptPublic(create(script.SetScriptPublicRequestSchema, { idOrSlug, caller: caller(userId), public: true }))],
      ['metadata PATCH', (idOrSlug, userId) => f.client.updateScriptMetadata(create(script.UpdateScriptMetadataRequestSchema, { idOrSlug, caller: caller(userId), name: 'Renamed' }))],
      ['DELETE', (idOrSlug, userId) => f.client.deleteScript(create(script.DeleteScriptRequestSchema, { idOrSlug, caller: caller(userId) }))],
    ])('%s answers NotFound and changes nothing', async (what, change) => {
      const userId = randomUUID();
      const { id } = await upload(userId, `Deleted Under ${what}`);
      let answer: Promise<{ code: Code; message: string }> | undefined;
      // Another DELETE holds the row: the change has read the script and waits to lock it.
      await f.orm.em.fork().transactional(async (em) => {
        await em.execute('select 1 from script where id = ? for update', [id]);
        answer = codeOf(change(id, userId));
        answer.catch(() => undefined);
        await untilALockIsAwaited();
        await em.execute('delete from script where id = ?', [id]);
      });
      expect(await answer).toMatchObject({ code: Code.NotFound });
      expect(await rows('select id from script where id = ? or user_id = ?', [id, userId])).toEqual([]);
    });
  });

  it('keeps an upload PENDING while Temporal cannot take its build and starts it from the outbox once it can', async () => {
    const userId = randomUUID();
    f.builds.failLaunch = true;
    let pending: script.Script;
    try {
      // The upload succeeds; its build's start fails and stays queued.
      pending = await upload(userId, 'Resumed Later');
    } finally {
      f.builds.failLaunch = false;
    }
    expect(pending.status).toBe(S.PENDING);
    expect(f.builds.launched).not.toContainEqual({ scriptId: pending.id, version: 1 });
    expect(await rows('select attempts, last_error from build_dispatch where script_id = ?', [pending.id])).toEqual([{ attempts: 1, last_error: 'Temporal is down' }]);
    // Due again after its backoff; made due now here.
    await rows('update build_dispatch set next_at = now() where script_id = ?', [pending.id]);
    expect(await f.dispatch()).toBe(true);
    expect(f.builds.launched.filter((b) => b.scriptId === pending.id)).toEqual([{ scriptId: pending.id, version: 1 }]);
    expect(await rows('select 1 from build_dispatch where script_id = ?', [pending.id])).toEqual([]);
  });

  it('queues every unfinished build again at start (resumeBuilds), and nothing else', async () => {
    const before = f.builds.launched.length;
    const resumed = await resumeBuilds(f.deps);
    expect(await f.dispatch()).toBe(true);
    const launched = f.builds.launched.slice(before);
    expect(resumed).toBe(launched.length);
    // Only versions still PENDING or BUILDING.
    const unfinished = await rows("select script_id, number from script_version where status in ('PENDING', 'BUILDING')");
    expect(launched).toHaveLength(unfinished.length);
  });

  it('deletes a script with its versions and logs, and its archive once no version uses it', async () => {
    const [userId, otherUser] = [randomUUID(), randomUUID()];
    const gone = await upload(userId, 'Gone Script');
    // The same bytes under another name are another archive; the same bytes twice share one.
    const bytes = archive('Shared Bytes');
    const first = (await f.client.createScript(createMessages({ caller: caller(userId), fileName: 'a.tar.gz' }, bytes))).script!;
    await f.client.deleteScript(create(script.DeleteScriptRequestSchema, { idOrSlug: first.id, caller: caller(userId) }));
    const again = (await f.client.createScript(createMessages({ caller: caller(otherUser), fileName: 'b.tar.gz' }, bytes))).script!;
    const [sharedDigest] = (await rows('select digest from script_version where script_id = ?', [again.id])).map((r) => String(r['digest']).trim());
    const goneDigest = String((await rows('select digest from script_version where script_id = ?', [gone.id]))[0]!['digest']).trim();

    const deleted = await f.client.deleteScript(create(script.DeleteScriptRequestSchema, { idOrSlug: gone.slug, caller: caller(userId) }));
    expect(deleted.script!.id).toBe(gone.id);
    expect(await rows('select 1 from script_version where script_id = ? union all select 1 from script_log where script_id = ?', [gone.id, gone.id])).toEqual([]);
    expect(artifactFiles().some((file) => file.endsWith(goneDigest.slice(2)))).toBe(false);
    expect(artifactFiles().some((file) => file.endsWith(sharedDigest!.slice(2)))).toBe(true);
    expect(await rows('select digest from artifact_release')).toEqual([]);
    expect((await codeOf(f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: gone.id, caller: caller(userId) })))).code).toBe(Code.NotFound);
  });

  it('refuses a metadata name with a line break or control character, changing nothing', async () => {
    const userId = randomUUID();
    const created = await upload(userId, 'One Line Name');
    for (const name of ['Two\nLines', 'Tab\there', 'Sep\u2028arated']) {
      const refused = await codeOf(f.client.updateScriptMetadata(create(script.UpdateScriptMetadataRequestSchema, { idOrSlug: created.id, caller: caller(userId), name })));
      expect(refused).toEqual({ code: Code.InvalidArgument, message: 'name must not hold control characters or line breaks' });
    }
    expect((await rows('select name from script where id = ?', [created.id]))[0]).toEqual({ name: 'One Line Name' });
  });

  it('removes an archive whose version never committed once its grace is over, and keeps those of versions that did', async () => {
    const userId = randomUUID();
    const kept = await upload(userId, 'Committed Script');
    const keptDigest = String((await rows('select digest from script_version where script_id = ?', [kept.id]))[0]!['digest']).trim();
    expect(await rows('select 1 from artifact_release where digest = ?', [keptDigest])).toEqual([]);

    // The bytes are renamed into place, then the version's transaction never commits (as
    // when its commit fails or the process dies right there).
    const store = f.deps.store;
    f.deps.store = Object.assign(Object.create(store) as typeof store, {
      stage: async (source: AsyncIterable<Uint8Array>) => {
        const staged = await store.stage(source);
        return { ...staged, commit: async () => { await staged.commit(); throw new Error('the process died here'); } };
      },
    });
    const bytes = archive('Stranded Script');
    try {
      expect((await codeOf(f.client.createScript(createMessages({ caller: caller(userId), fileName: 's.tar.gz' }, bytes)))).code).toBe(Code.Internal);
    } finally {
      f.deps.store = store;
    }
    expect(await rows("select 1 from script where slug = 'stranded-script'")).toEqual([]);
    const [queued] = await rows("select digest, released_at > now() + interval '5 minutes' as later from artifact_release where released_at > now()");
    const strandedDigest = String(queued!['digest']).trim();
    expect(queued!['later']).toBe(true);
    expect(artifactFiles().some((file) => file.endsWith(strandedDigest.slice(2)))).toBe(true);

    // Not before its grace is over: the version's transaction could still be committing.
    await releaseArtifacts(f.deps);
    expect(artifactFiles().some((file) => file.endsWith(strandedDigest.slice(2)))).toBe(true);
    await rows("update artifact_release set released_at = now() - interval '1 second' where digest = ?", [strandedDigest]);
    await releaseArtifacts(f.deps);
    expect(artifactFiles().some((file) => file.endsWith(strandedDigest.slice(2)))).toBe(false);
    expect(artifactFiles().some((file) => file.endsWith(keptDigest.slice(2)))).toBe(true);
    expect(await rows('select 1 from artifact_release where digest = ?', [strandedDigest])).toEqual([]);
  });

  it("deletes every script of a user for deleteUser, and no one else's", async () => {
    const [userId, otherUser] = [randomUUID(), randomUUID()];
    await upload(userId, 'Mine One');
    await upload(userId, 'Mine Two');
    const kept = await upload(otherUser, 'Not Mine');
    expect(await deleteScriptsOfUser(f.deps, userId)).toBe(2);
    expect(await deleteScriptsOfUser(f.deps, userId)).toBe(0);
    expect(await rows('select id from script where user_id = ?', [userId])).toEqual([]);
    expect(await rows('select id from script where id = ?', [kept.id])).toHaveLength(1);
  });

  it('deletes a user’s scripts though one archive cannot be removed, which stays queued for the next pass', async () => {
    const userId = randomUUID();
    const [stuck, freed] = [await upload(userId, 'Stuck Archive'), await upload(userId, 'Freed Archive')];
    const digestOf = async (id: string) => String((await rows('select digest from script_version where script_id = ?', [id]))[0]!['digest']).trim();
    const [stuckDigest, freedDigest] = [await digestOf(stuck.id), await digestOf(freed.id)];
    const store = f.deps.store;
    f.deps.store = Object.assign(Object.create(store) as typeof store, {
      delete: async (digest: string) => {
        if (digest === stuckDigest) throw Object.assign(new Error('EACCES: permission denied, unlink'), { code: 'EACCES' });
        return store.delete(digest);
      },
    });
    try {
      expect(await deleteScriptsOfUser(f.deps, userId)).toBe(2);
    } finally {
      f.deps.store = store;
    }
    expect(artifactFiles().some((file) => file.endsWith(freedDigest.slice(2)))).toBe(false);
    expect(artifactFiles().some((file) => file.endsWith(stuckDigest.slice(2)))).toBe(true);
    expect(await rows('select 1 from artifact_release where digest = ?', [stuckDigest])).toHaveLength(1);
    // Once the store can, the next pass removes it.
    await releaseArtifacts(f.deps);
    expect(artifactFiles().some((file) => file.endsWith(stuckDigest.slice(2)))).toBe(false);
    expect(await rows('select 1 from artifact_release where digest = ?', [stuckDigest])).toEqual([]);
  });
});
