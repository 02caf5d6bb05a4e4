/**
 * The script routes other than uploads: each a thin mapping to one RPC of a fake script
 * service — parameters in, the REST shape out, errors by code.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { execution, script, user } from '@gef/protos';
import { attachmentDisposition } from '../src/routes/scripts';
import { fakeScript, otherId, ownerId, quietCancelledCalls, scriptId, startScriptStack, type ScriptStack } from './scripts-fakes';
import { request } from './support';

let stack: ScriptStack;
let token: string;
let adminToken: string;

beforeAll(async () => {
  quietCancelledCalls();
  stack = await startScriptStack();
  token = await stack.keycloak.token(ownerId);
  adminToken = await stack.keycloak.token(otherId, 'ADMIN');
});
afterAll(() => stack.stop());

const get = (path: string, t = token, headers: Record<string, string> = {}) =>
  request(stack.gateway.url, path, { headers: { Authorization: `Bearer ${t}`, ...headers } });
const call = (method: string, path: string, t = token) => request(stack.gateway.url, path, { method, headers: { Authorization: `Bearer ${t}` } });

const log = (id: number, text: string, at: string) =>
  create(script.ScriptLogSchema, { id: BigInt(id), text, registerDate: timestampFromDate(new Date(at)), scriptId });

describe('GET /api/v1/script', () => {
  it('passes the list parameters and answers a page with the relations asked for', async () => {
    let seen: script.ListScriptsRequest | undefined;
    stack.handlers.script.listScripts = (req) => {
      seen = req;
      return create(script.ListScriptsResponseSchema, {
        scripts: [
          fakeScript({ logs: req.includeLogs ? [log(1, 'Build: version 1 received', '2026-11-28T05:13:18.5Z')] : [], status: script.ScriptStatus.SUCCESS }),
          fakeScript({ id: 'c0ffee00-0000-4000-8000-000000000001', slug: 'other', userId: otherId, public: true, cpuLimit: 0.5, memoryLimit: 268_435_456n, timeout: 600 }),
        ],
        page: 2,
        perPage: 2,
        total: 7n,
      });
    };
    const lookedUp: string[] = [];
    stack.handlers.user.getUser = (req) => {
      lookedUp.push(req.idOrEmail);
      if (req.idOrEmail !== ownerId) throw new ConnectError('User not found', Code.NotFound);
      return create(user.GetUserResponseSchema, {
        user: { id: ownerId, email: 'ana@example.org', name: 'Ana', country: 'KE', institution: 'CI', role: user.Role.USER },
      });
    };
    const asked: execution.ListExecutionsRequest[] = [];
    stack.handlers.execution.listExecutions = (req) => {
      asked.push(req);
      // The caller's runs of the first script; none of the second.
      const executions =
        req.scriptIds.includes(scriptId)
          ? [
              create(execution.ExecutionSchema, {
                id: 'e0000000-0000-4000-8000-000000000001',
                scriptId,
                userId: ownerId,
                status: execution.ExecutionStatus.FINISHED,
                progress: 100,
                startDate: timestampFromDate(new Date('2026-11-28T06:00:00Z')),
                endDate: timestampFromDate(new Date('2026-11-28T06:01:00.25Z')),
                updatedAt: timestampFromDate(new Date('2026-11-28T06:01:00.25Z')),
                scriptVersion: 1,
                attempt: 1,
                workflowId: 'execution-e0000000-0000-4000-8000-000000000001',
              }),
            ]
          : [];
      return create(execution.ListExecutionsResponseSchema, { executions, page: 1, perPage: req.perPage, total: BigInt(executions.length) });
    };
    const res = await get('/api/v1/script?include=logs,user,executions&filter=status%3DSUCCESS&sort=-created_at&page=2&per_page=2');
    expect(res.status).toBe(200);
    expect(seen).toMatchObject({ filter: 'status=SUCCESS', sort: '-created_at', page: 2, perPage: 2, includeLogs: true, caller: { userId: ownerId, role: user.Role.USER } });
    expect(lookedUp.sort()).toEqual([otherId, ownerId].sort());
    const body = res.json();
    expect(body).toMatchObject({ page: 2, per_page: 2, total: 7 });
    expect(body.data[0]).toMatchObject({
      status: 'SUCCESS',
      logs: [{ id: 1, text: 'Build: version 1 received', register_date: '2026-11-28T05:13:18.500000', script_id: scriptId }],
      user: { id: ownerId, name: 'Ana', country: 'KE', institution: 'CI' },
      executions: [
        {
          id: 'e0000000-0000-4000-8000-000000000001',
          script_id: scriptId,
          user_id: ownerId,
          status: 'FINISHED',
          progress: 100,
          start_date: '2026-11-28T06:00:00.000000',
          end_date: '2026-11-28T06:01:00.250000',
          attempt: 1,
        },
      ],
    });
    // Embedded users carry public fields only; embedded executions leave params, results
    // and (for a USER) the workflow id out.
    expect(Object.keys(body.data[0].user).sort()).toEqual(['country', 'id', 'institution', 'name']);
    expect(Object.keys(body.data[0].executions[0])).not.toEqual(expect.arrayContaining(['params']));
    expect(body.data[0].executions[0]).not.toHaveProperty('results');
    expect(body.data[0].executions[0]).not.toHaveProperty('workflow_id');
    expect(body.data[1]).toMatchObject({ slug: 'other', public: true, user: null, cpu_limit: 0.5, memory_limit: 268_435_456, timeout: 600, executions: [] });
    // One list for all the scripts, as the caller, the newest runs of each.
    expect(asked).toHaveLength(1);
    expect([...asked[0]!.scriptIds].sort()).toEqual([scriptId, 'c0ffee00-0000-4000-8000-000000000001'].sort());
    expect(asked[0]).toMatchObject({ caller: { userId: ownerId, role: user.Role.USER }, perScript: 100, excludeParams: true, excludeResults: true, ownOnly: false });
  });

  it('shares 10,000 embedded executions between the scripts of a list', async () => {
    const many = Array.from({ length: 400 }, (_, i) => fakeScript({ id: `c0ffee00-0000-4000-8000-${String(i).padStart(12, '0')}`, slug: `s-${i}` }));
    stack.handlers.script.listScripts = () => create(script.ListScriptsResponseSchema, { scripts: many, page: 1, perPage: 1000, total: 400n });
    const asked: Array<{ scripts: number; perScript: number }> = [];
    stack.handlers.execution.listExecutions = (req) => {
      asked.push({ scripts: req.scriptIds.length, perScript: req.perScript });
      return create(execution.ListExecutionsResponseSchema, { executions: [], page: 1, perPage: req.perScript, total: 0n });
    };
    const res = await get('/api/v1/script?include=executions');
    expect(res.status).toBe(200);
    expect(res.json().data).toHaveLength(400);
    expect(asked).toEqual([{ scripts: 400, perScript: 25 }]);
  });

  it('leaves the relations out unless asked', async () => {
    stack.handlers.script.listScripts = () => create(script.ListScriptsResponseSchema, { scripts: [fakeScript()], page: 1, perPage: 20, total: 1n });
    const res = await get('/api/v1/script');
    expect(res.status).toBe(200);
    expect(Object.keys(res.json().data[0])).not.toEqual(expect.arrayContaining(['logs']));
    expect(res.json().data[0]).not.toHaveProperty('user');
    expect(res.json().data[0]).not.toHaveProperty('executions');
  });

  it('embeds the executions an ADMIN sees of one script, with their workflow ids', async () => {
    stack.handlers.script.getScript = (req) => create(script.GetScriptResponseSchema, { script: fakeScript({ id: scriptId, slug: req.idOrSlug }) });
    let asked: execution.ListExecutionsRequest | undefined;
    stack.handlers.execution.listExecutions = (req) => {
      asked = req;
      return create(execution.ListExecutionsResponseSchema, {
        executions: [create(execution.ExecutionSchema, { id: 'e0000000-0000-4000-8000-000000000002', scriptId, userId: otherId, status: execution.ExecutionStatus.RUNNING, workflowId: 'execution-e0000000-0000-4000-8000-000000000002' })],
        page: 1,
        perPage: 100,
        total: 1n,
      });
    };
    const res = await get('/api/v1/script/my-script?include=executions', adminToken);
    expect(res.status).toBe(200);
    expect(asked).toMatchObject({ scriptIds: [scriptId], perScript: 100, caller: { userId: otherId, role: user.Role.ADMIN } });
    expect(res.json().data.executions).toEqual([
      expect.objectContaining({ id: 'e0000000-0000-4000-8000-000000000002', status: 'RUNNING', workflow_id: 'execution-e0000000-0000-4000-8000-000000000002' }),
    ]);
  });

  it('answers 503 when the execution service is down while embedding', async () => {
    stack.handlers.script.getScript = () => create(script.GetScriptResponseSchema, { script: fakeScript() });
    stack.handlers.execution.listExecutions = () => {
      throw new ConnectError('down', Code.Unavailable);
    };
    const res = await get(`/api/v1/script/${scriptId}?include=executions`);
    expect(res.status).toBe(503);
  });

  it.each([
    ['an unknown parameter', '/api/v1/script?user=me', /Unknown query parameter 'user'/],
    ['an unknown include', '/api/v1/script?include=versions', /Unknown include value 'versions'/],
    ['a bad page', '/api/v1/script?page=0', /page must be a positive integer/],
    ['a repeated parameter that is no list', '/api/v1/script?page=1&page=2', /given once/],
  ])('refuses %s (400)', async (_name, path, detail) => {
    const res = await get(path);
    expect(res.status).toBe(400);
    expect(res.json().detail).toMatch(detail);
  });

  it('passes the service refusing a filter on as a 400', async () => {
    stack.handlers.script.listScripts = () => {
      throw new ConnectError("Unknown filter field 'password'", Code.InvalidArgument);
    };
    const res = await get('/api/v1/script?filter=password%3Dx');
    expect(res.status).toBe(400);
    expect(res.json().detail).toBe("Unknown filter field 'password'");
  });
});

describe('one script', () => {
  it('GET finds it by id or slug', async () => {
    const keys: string[] = [];
    stack.handlers.script.getScript = (req) => {
      keys.push(req.idOrSlug);
      return create(script.GetScriptResponseSchema, { script: fakeScript({ description: 'Land degradation' }) });
    };
    for (const key of [scriptId, 'my-first-script']) {
      const res = await get(`/api/v1/script/${key}/`);
      expect(res.status).toBe(200);
      expect(res.json().data).toMatchObject({ id: scriptId, description: 'Land degradation' });
    }
    expect(keys).toEqual([scriptId, 'my-first-script']);
  });

  it.each<[string, Code, number, string]>([
    ['invisible', Code.NotFound, 404, 'not_found'],
    ['not owned', Code.PermissionDenied, 403, 'permission_denied'],
    ['down', Code.Unavailable, 503, 'unavailable'],
  ])('maps a script that is %s to its status', async (_name, code, status, error) => {
    stack.handlers.script.deleteScript = () => {
      throw new ConnectError('nope', code);
    };
    const res = await call('DELETE', '/api/v1/script/my-first-script');
    expect(res.status).toBe(status);
    expect(res.json()).toMatchObject({ status, error });
  });

  it('DELETE answers the script as it was', async () => {
    let seen: script.DeleteScriptRequest | undefined;
    stack.handlers.script.deleteScript = (req) => {
      seen = req;
      return create(script.DeleteScriptResponseSchema, { script: fakeScript() });
    };
    const res = await call('DELETE', '/api/v1/script/my-first-script', adminToken);
    expect(res.status).toBe(200);
    expect(res.json().data.id).toBe(scriptId);
    expect(seen).toMatchObject({ idOrSlug: 'my-first-script', caller: { userId: otherId, role: user.Role.ADMIN } });
  });

  it('publish and unpublish set public', async () => {
    const seen: boolean[] = [];
    stack.handlers.script.setScriptPublic = (req) => {
      seen.push(req.public);
      return create(script.SetScriptPublicResponseSchema, { script: fakeScript({ public: req.public }) });
    };
    expect((await call('POST', '/api/v1/script/my-first-script/publish')).json().data.public).toBe(true);
    expect((await call('POST', '/api/v1/script/my-first-script/unpublish')).json().data.public).toBe(false);
    expect(seen).toEqual([true, false]);
  });

  it('answers 404 for an over-long key without asking the service', async () => {
    const res = await get(`/api/v1/script/${'x'.repeat(300)}`);
    expect(res.status).toBe(404);
  });

  it.each([
    ['GET', '/api/v1/script'],
    ['GET', '/api/v1/script/x'],
    ['PATCH', '/api/v1/script/x'],
    ['DELETE', '/api/v1/script/x'],
    ['POST', '/api/v1/script/x/publish'],
    ['POST', '/api/v1/script/x/unpublish'],
    ['GET', '/api/v1/script/x/download'],
    ['GET', '/api/v1/script/x/log'],
  ])('%s %s needs a token', async (method, path) => {
    const res = await request(stack.gateway.url, path, { method });
    expect(res.status).toBe(401);
    const bad = await request(stack.gateway.url, path, { method, headers: { Authorization: 'Bearer not-a-token' } });
    expect(bad.status).toBe(401);
    expect(bad.json().error).toBe('invalid_token');
  });
});

describe('GET /api/v1/script/{script}/download', () => {
  const archive = randomBytes(200_000);
  beforeEach(() => {
    stack.handlers.script.downloadScript = async function* (req) {
      if (req.idOrSlug === 'missing') throw new ConnectError('Script not found', Code.NotFound);
      const description = { scriptId, slug: 'my-first-script', version: 1, fileName: 'My First Script.tar.gz', size: BigInt(archive.length), digest: 'ab'.repeat(32) };
      yield create(script.DownloadScriptResponseSchema, { archive: description, chunk: archive.subarray(0, 1000) });
      for (let i = 1000; i < archive.length; i += 65_536) yield create(script.DownloadScriptResponseSchema, { chunk: archive.subarray(i, i + 65_536) });
    };
  });

  it('streams the bytes as uploaded, never compressed', async () => {
    const res = await get('/api/v1/script/my-first-script/download', token, { 'Accept-Encoding': 'gzip, deflate, br' });
    expect(res.status).toBe(200);
    expect(res.body.equals(archive)).toBe(true);
    expect(res.headers['content-type']).toBe('application/gzip');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(archive.length));
    expect(res.headers['content-disposition']).toBe(`attachment; filename="My First Script.tar.gz"; filename*=UTF-8''My%20First%20Script.tar.gz`);
    expect(res.headers['content-digest']).toBe(`sha-256=:${Buffer.from('ab'.repeat(32), 'hex').toString('base64')}:`);
  });

  it('reads the archive from the service only as fast as the client takes it, and stops when the client leaves', async () => {
    // Far more than the loopback socket buffers of both hops hold (about 110 MiB here).
    const total = 512 * 1024 * 1024;
    const piece = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    let finished = false;
    stack.handlers.script.downloadScript = async function* () {
      try {
        yield create(script.DownloadScriptResponseSchema, { archive: { scriptId, slug: 's', version: 1, fileName: 's.tar.gz', size: BigInt(total) } });
        while (sent < total) {
          sent += piece.length;
          yield create(script.DownloadScriptResponseSchema, { chunk: piece });
        }
      } finally {
        finished = true;
      }
    };
    const url = new URL(stack.gateway.url);
    const samples: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: url.hostname, port: url.port, path: '/api/v1/script/s/download', headers: { Authorization: `Bearer ${token}` }, agent: false }, (res) => {
        // The client reads nothing: once the buffers are full the gateway stops pulling.
        res.pause();
        setTimeout(() => samples.push(sent), 1500);
        setTimeout(() => {
          samples.push(sent);
          req.destroy();
          resolve();
        }, 2000);
      });
      req.on('error', () => undefined);
      req.on('timeout', reject);
    });
    expect(samples[0]).toBe(samples[1]);
    expect(samples[0]).toBeLessThan(total);
    // The client left: the gateway cancels the stream.
    for (let i = 0; i < 100 && !finished; i++) await new Promise((r) => setTimeout(r, 20));
    expect(finished).toBe(true);
    expect(sent).toBeLessThan(total);
  });

  it('answers HEAD with the headers only', async () => {
    const res = await request(stack.gateway.url, '/api/v1/script/my-first-script/download', { method: 'HEAD', headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(archive.length));
    expect(res.body.length).toBe(0);
  });

  it('answers an invisible script with the JSON 404', async () => {
    const res = await get('/api/v1/script/missing/download');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toMatchObject({ status: 404, detail: 'Script not found' });
  });

  it('names any file safely', () => {
    expect(attachmentDisposition('Análise "x".tar.gz')).toBe(`attachment; filename="An_lise _x_.tar.gz"; filename*=UTF-8''An%C3%A1lise%20%22x%22.tar.gz`);
  });
});

describe('GET /api/v1/script/{script}/log', () => {
  let seen: script.ListScriptLogsRequest | undefined;
  beforeEach(() => {
    seen = undefined;
    stack.handlers.script.listScriptLogs = (req) => {
      seen = req;
      return create(script.ListScriptLogsResponseSchema, {
        logs: [log(4, 'Build: creating the environment', '2026-11-28T05:13:18.123Z'), log(5, 'Build: done', '2026-11-28T05:13:19Z')],
      });
    };
  });

  it('answers the lines oldest first in the REST shape', async () => {
    const res = await get('/api/v1/script/my-first-script/log');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      data: [
        { id: 4, text: 'Build: creating the environment', register_date: '2026-11-28T05:13:18.123000', script_id: scriptId },
        { id: 5, text: 'Build: done', register_date: '2026-11-28T05:13:19.000000', script_id: scriptId },
      ],
    });
    expect(seen?.start).toBeUndefined();
    expect(seen?.lastId).toBeUndefined();
  });

  it.each([
    ['2026-11-28T05:13:18.123456', '2026-11-28T05:13:18.123Z'],
    ['2026-11-28T05:13:18.123456 00:00', '2026-11-28T05:13:18.123Z'],
    ['2026-11-28T07:13:18+02:00', '2026-11-28T05:13:18.000Z'],
    ['2026-11-28', '2026-11-28T00:00:00.000Z'],
  ])('reads start=%s', async (start, expected) => {
    const res = await get(`/api/v1/script/my-first-script/log?start=${encodeURIComponent(start)}`);
    expect(res.status).toBe(200);
    expect(timestampDate(seen!.start!).toISOString()).toBe(expected);
  });

  it('reads the broken form where + arrived as a space (unencoded +)', async () => {
    const res = await get('/api/v1/script/my-first-script/log?start=2026-11-28T05:13:18.123456+00:00');
    expect(res.status).toBe(200);
    expect(timestampDate(seen!.start!).toISOString()).toBe('2026-11-28T05:13:18.123Z');
  });

  it('reads last-id', async () => {
    const res = await get('/api/v1/script/my-first-script/log?last-id=3');
    expect(res.status).toBe(200);
    expect(seen?.lastId).toBe(3n);
  });

  it.each([
    ['start=yesterday', /start must be an ISO 8601/],
    ['start=2026-02-30', /start must be an ISO 8601/],
    ['last-id=x', /last-id must be a non-negative integer/],
    ['last-id=-1', /last-id must be a non-negative integer/],
    ['last_id=1', /Unknown query parameter/],
  ])('refuses %s (400)', async (query, detail) => {
    const res = await get(`/api/v1/script/my-first-script/log?${query}`);
    expect(res.status).toBe(400);
    expect(res.json().detail).toMatch(detail);
    expect(seen).toBeUndefined();
  });

  it('quotes a refused value cut inside a surrogate pair as well-formed text', async () => {
    const res = await get(`/api/v1/script/my-first-script/log?start=${'a'.repeat(59)}${encodeURIComponent('😀')}`);
    expect(res.status).toBe(400);
    expect(res.body.toString()).not.toMatch(/\\ud83d/i);
    expect(res.json().detail).toContain(`'${'a'.repeat(59)}\ufffd'`);
  });
});
