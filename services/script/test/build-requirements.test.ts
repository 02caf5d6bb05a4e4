import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { script } from '@gef/protos';
import { buildScript, buildScriptWorkflowId } from '@gef/workflows';
import type { RunnerActivities } from '@gef/workflows/activities';
import { taskQueues } from '@gef/workflows/task-queues';
import { startTestPostgres, type TestPostgres, testTemporalCli } from '@gef/deploy';
import { createScriptActivities } from '../src/activities';
import { signBuildToken } from '../src/domain/build-token';
import { finishScriptBuild, startScriptBuild } from '../src/domain/script-builds';
import { buildTokenSecret, caller, createMessages, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { cliLayout, gzip, tar } from './support/tar-writer';


const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function codeOf(promise: Promise<unknown>): Promise<Code> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  throw new Error('expected the call to fail');
}

/** Every string and byte field (read as UTF-8) of a workflow's history, payloads included. */
function textsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const item of value) textsOf(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) textsOf(item, out);
  return out;
}

/** A private index's credentials, as requirements.txt may hold them. */
const secret = 'REQ-TOKEN';
const requirements = `--extra-index-url https://u:${secret}@x/simple\nprivate-package @ git+https://${secret}@github.com/owner/private-package.git\nsix==1.17.0\n`;

// Requirements may hold credentials: runners read them with the build token
// (GetBuildRequirements), and they never pass through the buildScript workflow, whose
// history operators read. Real PostgreSQL and Temporal (the test server); the runner faked.
describe('build requirements', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_build_requirements_test');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  async function upload(userId: string, name: string, text: string): Promise<string> {
    const archive = gzip(tar(cliLayout({ name }, text)));
    const res = await f.client.createScript(createMessages({ caller: caller(userId), fileName: `${name}.tar.gz` }, archive));
    await f.dispatch();
    return res.script!.id;
  }

  const read = (ref: { scriptId: string; version: number }, buildToken: string) =>
    f.client.getBuildRequirements(create(script.GetBuildRequirementsRequestSchema, { ...ref, buildToken }));

  it('are not in the plan of a build', async () => {
    const scriptId = await upload(randomUUID(), 'Planned Script', requirements);
    const plan = await startScriptBuild(f.deps, { scriptId, version: 1 });
    expect(plan).toMatchObject({ proceed: true, runtime: 'python3', buildToken: expect.any(String) });
    expect(plan).not.toHaveProperty('requirements');
    expect(JSON.stringify(plan)).not.toContain(secret);
    // Started again (an answer lost): the same plan, without them either.
    expect(await startScriptBuild(f.deps, { scriptId, version: 1 })).not.toHaveProperty('requirements');
  });

  it('are answered as uploaded to the holder of the build token while the version builds', async () => {
    const scriptId = await upload(randomUUID(), 'Read Script', requirements);
    const ref = { scriptId, version: 1 };
    const token = await signBuildToken(buildTokenSecret, ref);
    // Not yet building.
    expect(await codeOf(read(ref, token))).toBe(Code.FailedPrecondition);
    const plan = await startScriptBuild(f.deps, ref);
    if (!plan.proceed) throw new Error('expected the build to proceed');
    expect((await read(ref, plan.buildToken)).requirements).toBe(requirements);
    expect((await read({ scriptId: scriptId.toUpperCase(), version: 1 }, plan.buildToken)).requirements).toBe(requirements);

    expect(await codeOf(read(ref, ''))).toBe(Code.Unauthenticated);
    expect(await codeOf(read(ref, 'forged.token.value'))).toBe(Code.Unauthenticated);
    expect(await codeOf(read(ref, await signBuildToken('another-secret-of-enough-length', ref)))).toBe(Code.Unauthenticated);
    // A token of another version, or of another script.
    expect(await codeOf(read({ scriptId, version: 2 }, plan.buildToken))).toBe(Code.PermissionDenied);
    const other = await upload(randomUUID(), 'Other Read Script', '');
    await startScriptBuild(f.deps, { scriptId: other, version: 1 });
    expect(await codeOf(read({ scriptId: other, version: 1 }, plan.buildToken))).toBe(Code.PermissionDenied);
    expect((await read({ scriptId: other, version: 1 }, await signBuildToken(buildTokenSecret, { scriptId: other, version: 1 }))).requirements).toBe('');

    // Once the build has ended, the token reads nothing.
    await finishScriptBuild(f.deps, { ...ref, status: 'SUCCESS', environmentHash: 'e'.repeat(64) });
    expect(await codeOf(read(ref, plan.buildToken))).toBe(Code.FailedPrecondition);
  });

  it('of a script that is gone are NotFound', async () => {
    const userId = randomUUID();
    const scriptId = await upload(userId, 'Gone Script', requirements);
    const ref = { scriptId, version: 1 };
    const plan = await startScriptBuild(f.deps, ref);
    if (!plan.proceed) throw new Error('expected the build to proceed');
    await f.client.deleteScript(create(script.DeleteScriptRequestSchema, { idOrSlug: scriptId, caller: caller(userId) }));
    expect(await codeOf(read(ref, plan.buildToken))).toBe(Code.NotFound);
    const never = { scriptId: randomUUID(), version: 1 };
    expect(await codeOf(read(never, await signBuildToken(buildTokenSecret, never)))).toBe(Code.NotFound);
  });

  describe('in a build run by Temporal', () => {
    let env: TestWorkflowEnvironment;
    let bundle: WorkflowBundleWithSourceMap;

    beforeAll(async () => {
      Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
      env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: testTemporalCli() } } });
      bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('@gef/workflows'), logger: quiet });
    }, 120_000);

    afterAll(async () => {
      await env?.teardown();
    });

    it('reach the runner, and no payload of the workflow history holds them', async () => {
      const userId = randomUUID();
      const scriptId = await upload(userId, 'Private Index Script', requirements);
      const ref = { scriptId, version: 1 };
      const received: string[] = [];
      // The runner as it reads requirements: those of its input, else the script service's.
      const runner: RunnerActivities = {
        async describeRunner() {
          return { hostname: 'runner-test', runtimes: [], sandbox: { setpriv: false, prlimit: false } };
        },
        async prepareEnvironment(input) {
          received.push(input.requirements ?? (await read(ref, input.buildToken ?? '')).requirements);
          return { environmentHash: 'd'.repeat(64), reused: false, hostname: 'runner-test' };
        },
      };
      const scriptWorker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue: taskQueues.script,
        workflowBundle: bundle,
        activities: createScriptActivities(f.deps),
      });
      const runnerWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.runner, activities: runner });
      const workflowId = buildScriptWorkflowId(ref);
      const result = await runnerWorker.runUntil(
        scriptWorker.runUntil(env.client.workflow.execute(buildScript, { taskQueue: taskQueues.script, workflowId, args: [ref] })),
      );
      expect(result).toMatchObject({ status: 'SUCCESS', environmentHash: 'd'.repeat(64) });
      expect(received).toEqual([requirements]);
      const versions = await f.orm.em.fork().execute('select status, environment_hash from script_version where script_id = ?', [scriptId]);
      expect(versions).toEqual([{ status: 'SUCCESS', environment_hash: 'd'.repeat(64) }]);

      const history = textsOf(await env.client.workflow.getHandle(workflowId).fetchHistory()).join('\n');
      // The search reads the payloads (the ids are in them).
      expect(history).toContain(scriptId);
      expect(history).not.toContain(secret);
    }, 120_000);
  });
});
