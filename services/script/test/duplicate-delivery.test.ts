import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createScriptActivities } from '../src/activities';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { caller, createMessages, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { cliLayout, gzip, tar } from './support/tar-writer';

const archive = (name: string) => gzip(tar(cliLayout({ name }, '')));

/**
 * Issue 6, faults: duplicate delivery. Temporal delivers an activity at least once: when a
 * completion is lost the same activity runs again with the same input. Each of the script
 * service's state-changing activities, called twice with the same input against a real
 * PostgreSQL, answers the same and changes nothing the second time.
 */
describe('script service: an activity delivered twice', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;
  let activities: ReturnType<typeof createScriptActivities>;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_dup');
    f = await serviceFixture(pg.url);
    activities = createScriptActivities(f.deps);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const artifactFiles = () =>
    fs.existsSync(f.artifacts) ? fs.readdirSync(f.artifacts, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort() : [];

  /** Everything a change to one user's scripts would show: rows, versions, logs, stored archives. */
  async function stateOf(userId: string): Promise<Record<string, unknown>> {
    const em = f.orm.em.fork();
    const versions = await em.execute<{ digest: string }[]>('select v.* from script_version v join script s on s.id = v.script_id where s.user_id = ? order by v.script_id, v.number', [userId]);
    const digests = versions.map((v) => v.digest.trim().slice(2));
    return {
      scripts: await em.execute('select * from script where user_id = ? order by id', [userId]),
      versions,
      logs: await em.execute('select l.* from script_log l join script s on s.id = l.script_id where s.user_id = ? order by l.id', [userId]),
      // The stored archives of the user's versions, and every archive file there is.
      artifacts: artifactFiles().filter((file) => digests.some((d) => file.endsWith(d))),
      allArtifacts: artifactFiles().length,
    };
  }

  async function twice<T>(userId: string, fn: () => Promise<T>, same: (a: T, b: T) => void = (a, b) => expect(b).toEqual(a)): Promise<T> {
    const first = await fn();
    const before = await stateOf(userId);
    const second = await fn();
    same(first, second);
    expect(await stateOf(userId)).toEqual(before);
    return first;
  }

  async function upload(userId: string, name: string) {
    const res = await f.client.createScript(createMessages({ caller: caller(userId), fileName: `${name}.tar.gz` }, archive(name)));
    return res.script!;
  }

  it('startScriptBuild and finishScriptBuild', async () => {
    const userId = randomUUID();
    const s = await upload(userId, `Dup Build ${userId.slice(0, 6)}`);
    const ref = { scriptId: s.id, version: 1 };
    const plan = await twice(
      userId,
      () => activities.startScriptBuild(ref),
      // The build token is signed anew each time; the plan is the same.
      (a, b) => expect({ ...b, buildToken: '' }).toEqual({ ...a, buildToken: '' }),
    );
    expect(plan).toMatchObject({ proceed: true, runtime: 'python3' });
    await twice(userId, () => activities.finishScriptBuild({ ...ref, status: 'SUCCESS', environmentHash: 'c'.repeat(64) }));
    // And a start delivered again after the build ended starts nothing.
    const late = await twice(userId, () => activities.startScriptBuild(ref));
    expect(late).toEqual({ proceed: false, reason: 'the build already ended SUCCESS' });
  });

  it('deleteScriptsOfUser', async () => {
    const [userId, other] = [randomUUID(), randomUUID()];
    await upload(userId, `Dup Gone ${userId.slice(0, 6)}`);
    await upload(other, `Dup Kept ${other.slice(0, 6)}`);
    const othersBefore = await stateOf(other);
    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    expect(await env.run(activities.deleteScriptsOfUser, userId)).toEqual({ scripts: 1 });
    // It says it is alive as it goes (the workflow gives it two minutes between heartbeats).
    expect(heartbeats.length).toBeGreaterThan(0);
    expect(await twice(userId, () => new MockActivityEnvironment().run(activities.deleteScriptsOfUser, userId))).toEqual({ scripts: 0 });
    expect({ ...(await stateOf(other)), allArtifacts: 0 }).toEqual({ ...othersBefore, allArtifacts: 0 });
    expect(await stateOf(userId)).toMatchObject({ scripts: [], versions: [], logs: [], artifacts: [] });
  });

  it('deleteScriptsOfUser stops, deleting no script, once Temporal no longer wants the attempt', async () => {
    const userId = randomUUID();
    await upload(userId, `Dup Unwanted ${userId.slice(0, 6)}`);
    const env = new MockActivityEnvironment();
    env.cancel('TIMED_OUT');
    await expect(env.run(activities.deleteScriptsOfUser, userId)).rejects.toThrow('the attempt is no longer wanted');
    expect((await stateOf(userId))['scripts']).toHaveLength(1);
  });
});
