/**
 * A build's requirements reach the runner from the script service (GetBuildRequirements,
 * with the build token), never in the activity's input: they may hold credentials. Real
 * venv and pip; the private package's host is a local server of this test.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, createRouterTransport } from '@connectrpc/connect';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createLogger } from '@gef/common';
import { script } from '@gef/protos';
import type { PreparedEnvironment, PrepareEnvironmentInput } from '@gef/workflows/activities';
import { prepareEnvironmentActivity } from '../src/activities/prepare-environment';
import { loadConfig } from '../src/config';
import { BuildRequirementsRefused, scriptServiceRequirements, type BuildRequirements, type BuildRequirementsRef } from '../src/environments/build-requirements';
import type { EnvironmentSettings } from '../src/environments/ensure-environment';
import { environmentHash } from '../src/environments/environment-hash';
import { normaliseRequirements } from '../src/environments/requirements';

const logger = createLogger('runner-test', 'silent');
const secret = 'REQ-TOKEN';
const ref = { scriptId: '0b6c1d9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e', version: 2, buildToken: 'the-build-token' };
/** The input the buildScript workflow sends: no requirements. */
const input: PrepareEnvironmentInput = { scriptId: ref.scriptId, version: ref.version, runtime: 'python3', buildToken: ref.buildToken };

/** Writes a wheel of one module, `gef_req_probe`. */
function probeWheel(dir: string, python: string): string {
  const file = path.join(dir, 'gef_req_probe-1.0-py3-none-any.whl');
  const code = [
    'import sys, zipfile',
    'dist = "gef_req_probe-1.0.dist-info"',
    'files = {dist + "/METADATA": "Metadata-Version: 2.1\\nName: gef-req-probe\\nVersion: 1.0\\n",',
    '         dist + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",',
    '         "gef_req_probe.py": "VALUE = 42\\n"}',
    'with zipfile.ZipFile(sys.argv[1], "w") as z:',
    '    for member, text in files.items():',
    '        z.writestr(member, text)',
    '    z.writestr(dist + "/RECORD", "".join(m + ",,\\n" for m in files) + dist + "/RECORD,,\\n")',
  ].join('\n');
  execFileSync(python, ['-c', code, file]);
  return file;
}

describe('prepareEnvironment', () => {
  let dir: string;
  let settings: EnvironmentSettings;
  let server: http.Server;
  let requirements: string;
  const seen: { url: string; authorized: boolean }[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-build-requirements-'));
    const config = loadConfig({ ...process.env, GEF_DATA_DIR: dir });
    settings = { dataDir: dir, python: config.PYTHON, processEnv: config.toolEnv, pipTimeoutMs: 120_000 };
    const wheel = fs.readFileSync(probeWheel(dir, config.PYTHON));
    // A private host: the wheel for the token only.
    server = http.createServer((req, res) => {
      const authorized = req.headers.authorization === `Basic ${Buffer.from(`u:${secret}`).toString('base64')}`;
      seen.push({ url: req.url ?? '', authorized });
      if (!authorized) res.writeHead(401, { 'www-authenticate': 'Basic realm="private"' }).end();
      else if (req.url === '/files/gef_req_probe-1.0-py3-none-any.whl') res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': wheel.length }).end(wheel);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    requirements = `# private index: --extra-index-url https://u:${secret}@x/simple\ngef-req-probe @ http://u:${secret}@127.0.0.1:${port}/files/gef_req_probe-1.0-py3-none-any.whl\n`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The build's workflow run, as Temporal names it. */
  const buildRun = randomUUID();

  function build(buildRequirements: BuildRequirements, given: PrepareEnvironmentInput = input) {
    const lines: string[] = [];
    const numbered: { attempt: number; buildRun: string }[] = [];
    const activity = prepareEnvironmentActivity({
      environments: settings,
      appendBuildLog: async (r, batch) => {
        numbered.push({ attempt: r.attempt, buildRun: r.buildRun });
        lines.push(...batch);
      },
      buildRequirements,
      logger,
      heartbeatIntervalMs: 100,
    });
    const env = new MockActivityEnvironment({ attempt: 1, workflowExecution: { workflowId: `build-script-${input.scriptId}-v1`, runId: buildRun } }, { logger: new DefaultLogger('ERROR') });
    return { lines, numbered, run: () => env.run(activity, given) as Promise<PreparedEnvironment> };
  }

  it("builds the environment from the requirements the script service gives for the build's token", async () => {
    const asked: BuildRequirementsRef[] = [];
    const b = build(async (r) => {
      asked.push(r);
      return requirements;
    });
    const prepared = await b.run();
    expect(asked).toEqual([ref]);
    // The environment those requirements name, its package fetched with their credentials.
    expect(prepared).toMatchObject({ environmentHash: environmentHash('python3', normaliseRequirements(requirements)), reused: false });
    const python = path.join(dir, 'environments', prepared.environmentHash, 'bin', 'python');
    expect(execFileSync(python, ['-c', 'import gef_req_probe; print(gef_req_probe.VALUE)']).toString().trim()).toBe('42');
    expect(seen.some((s) => s.authorized && s.url.endsWith('.whl'))).toBe(true);
    expect(b.lines.some((l) => l.includes(secret))).toBe(false);
    // Every batch is numbered within this attempt of this workflow run.
    expect(b.numbered.length).toBeGreaterThan(0);
    expect(new Set(b.numbered.map((n) => `${n.buildRun}/${n.attempt}`))).toEqual(new Set([`${buildRun}/1`]));
  }, 180_000);

  it('takes the requirements an input scheduled before builds read them carries, without asking', async () => {
    let asked = 0;
    const b = build(
      async () => {
        asked++;
        return requirements;
      },
      { ...input, requirements: '# none\n' },
    );
    expect(await b.run()).toMatchObject({ environmentHash: environmentHash('python3', []) });
    expect(asked).toBe(0);
  }, 60_000);

  it('refuses a pip option of the requirements without its credentials in the reason or the log', async () => {
    const b = build(async () => `--extra-index-url https://u:${secret}@x/simple\nsix==1.17.0\n`);
    const failure = await b.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ nonRetryable: true, type: 'InvalidRequirements', message: expect.stringContaining('https://****@x/simple') });
    expect((failure as Error).message).not.toContain(secret);
    expect(b.lines.some((l) => l.includes(secret))).toBe(false);
  }, 60_000);

  it('fails for good when the script service refuses the requirements, and is retried when it cannot be reached', async () => {
    const failureOf = (err: Error) =>
      build(async () => {
        throw err;
      })
        .run()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    const gone = await failureOf(new BuildRequirementsRefused('the script was deleted during its build', true));
    expect(gone).toBeInstanceOf(ApplicationFailure);
    expect(gone).toMatchObject({ nonRetryable: true, type: 'InvalidScript', message: 'the script was deleted during its build' });
    const refused = await failureOf(new BuildRequirementsRefused("the script service refused the build's token: The build token has expired", false));
    expect(refused).toMatchObject({ nonRetryable: true, type: 'BuildRefused' });
    const away = await failureOf(new ConnectError('connection refused', Code.Unavailable));
    expect(away).not.toBeInstanceOf(ApplicationFailure);
    expect(away).toBeInstanceOf(ConnectError);
  }, 60_000);
});

describe('scriptServiceRequirements', () => {
  /** The script service answering GetBuildRequirements with `answer`. */
  function service(answer: (req: script.GetBuildRequirementsRequest) => string) {
    const asked: script.GetBuildRequirementsRequest[] = [];
    const transport = createRouterTransport((router) => {
      router.service(script.ScriptService, {
        getBuildRequirements(req) {
          asked.push(req);
          return create(script.GetBuildRequirementsResponseSchema, { requirements: answer(req) });
        },
      });
    });
    return { asked, read: scriptServiceRequirements(createClient(script.ScriptService, transport)) };
  }

  const refusalOf = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (e: unknown) => e,
    );

  it('reads the requirements of the build its token names', async () => {
    const s = service(() => 'six==1.17.0\n');
    expect(await s.read(ref)).toBe('six==1.17.0\n');
    expect(s.asked).toMatchObject([{ scriptId: ref.scriptId, version: ref.version, buildToken: ref.buildToken }]);
  });

  it('tells a refusal for good from trouble that may pass', async () => {
    const failing = (code: Code) =>
      service(() => {
        throw new ConnectError('no', code);
      });
    expect(await refusalOf(failing(Code.NotFound).read(ref))).toMatchObject({ name: 'BuildRequirementsRefused', gone: true });
    for (const code of [Code.FailedPrecondition, Code.Unauthenticated, Code.PermissionDenied]) {
      expect(await refusalOf(failing(code).read(ref))).toMatchObject({ name: 'BuildRequirementsRefused', gone: false });
    }
    const away = await refusalOf(failing(Code.Unavailable).read(ref));
    expect(away).toBeInstanceOf(ConnectError);
    expect(away).not.toBeInstanceOf(BuildRequirementsRefused);
  });
});
