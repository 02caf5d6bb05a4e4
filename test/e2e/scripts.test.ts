/**
 * CONTRACT §5 against the real stack: publishing script archives as the Trends.Earth CLI
 * packs them, builds through Temporal and the runner, build logs, downloads, new versions,
 * requirements from PyPI, hostile archives, the visibility and ownership rules of every
 * route, and many uploads at once.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runnerKeyDevSecret, serviceKeyHeader } from '@gef/common';
import { readStackInfo } from '../harness/stack';
import { api, login, newUser, strongPassword, superadminCredentials, uniqueEmail } from './helpers/api';
import { buildLog, cliArchive, cliMembers, rawGet, slugOf, tar, targz, tarHeader, upload, waitForStatus, type Member } from './helpers/archives';

jest.setTimeout(180_000);

type Account = { id: string; token: string };
let owner: Account;
let other: Account;
let admin: Account;

const unique = () => randomBytes(4).toString('hex');
const apiDatePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

beforeAll(async () => {
  const superadmin = superadminCredentials();
  const superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
  const email = uniqueEmail('script-admin');
  const created = await api('POST', '/api/v1/user', { token: superToken, body: { email, name: 'Script Admin', password: strongPassword, role: 'ADMIN' } });
  expect(created.status).toBe(200);
  admin = { id: created.body.data.id, token: (await login(email, strongPassword)).access_token };
  [owner, other] = await Promise.all([newUser('script-owner'), newUser('script-other')]);
});

/** Every file under the script service's artifact store. */
function artifactFiles(): string[] {
  const info = readStackInfo();
  const root = join(info.env.script['GEF_DATA_DIR'] ?? info.dataDir, 'artifacts');
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk(root);
  return out.sort();
}

describe('a script as the Trends.Earth CLI publishes it', () => {
  const name = `CLI Layout Script ${unique()}`;
  const fileName = `${name}.tar.gz`;
  const archive = cliArchive(name);
  let id: string;

  it('is accepted at once as PENDING and builds to SUCCESS with a Build log', async () => {
    const res = await upload(owner.token, archive, fileName);
    expect(res.status).toBe(200);
    const script = res.body.data;
    expect(script).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      name,
      slug: slugOf(name),
      description: '',
      status: 'PENDING',
      public: false,
      user_id: owner.id,
      created_at: expect.stringMatching(apiDatePattern),
      updated_at: expect.stringMatching(apiDatePattern),
      version: 1,
      runtime: 'python3',
      cpu_limit: null,
      memory_limit: null,
      timeout: null,
    });
    id = script.id;
    const built = await waitForStatus(owner.token, id);
    expect(built.script.status).toBe('SUCCESS');

    const log = await buildLog(owner.token, id);
    expect(log.length).toBeGreaterThan(1);
    expect(log.every((l) => l.text.startsWith('Build: ') && l.script_id === id && apiDatePattern.test(l.register_date))).toBe(true);
    expect(log.map((l) => l.id)).toEqual([...log.map((l) => l.id)].sort((a, b) => a - b));
    expect(log[0]!.text).toContain(fileName);
  });

  it('serves its build log after an id (last-id) and after an instant (start), oldest first', async () => {
    const log = await buildLog(owner.token, id);
    const afterFirst = await buildLog(owner.token, id, `?last-id=${log[0]!.id}`);
    expect(afterFirst).toEqual(log.slice(1));
    expect(await buildLog(owner.token, id, `?last-id=${log[log.length - 1]!.id}`)).toEqual([]);

    const pivot = log[0]!.register_date;
    const later = log.filter((l) => l.register_date > pivot);
    expect(await buildLog(owner.token, id, `?start=${pivot}`)).toEqual(later);
    // A `+` that arrived as a space, and an explicit offset.
    expect(await buildLog(owner.token, id, `?start=${pivot}+00:00`)).toEqual(later);
    expect(await buildLog(owner.token, id, `?start=${encodeURIComponent(`${pivot}Z`)}&last-id=0`)).toEqual(later);
    expect(await buildLog(owner.token, id, '?start=2000-01-01')).toEqual(log);

    expect((await api('GET', `/api/v1/script/${id}/log?start=not-a-date`, { token: owner.token })).status).toBe(400);
    expect((await api('GET', `/api/v1/script/${id}/log?last-id=abc`, { token: owner.token })).status).toBe(400);
  });

  it('downloads exactly the uploaded bytes, as application/gzip, never compressed', async () => {
    const res = await rawGet(`/api/v1/script/${id}/download`, { Authorization: `Bearer ${owner.token}`, 'Accept-Encoding': 'gzip, deflate' });
    expect(res.status).toBe(200);
    expect(res.body.equals(archive)).toBe(true);
    expect(res.headers['content-type']).toBe('application/gzip');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(archive.length));
    expect(res.headers['content-disposition']).toContain(`filename="${fileName}"`);
  });

  it('is found by slug, with its logs, owner and executions when asked', async () => {
    const res = await api('GET', `/api/v1/script/${slugOf(name)}?include=logs,user,executions`, { token: owner.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ id, status: 'SUCCESS', executions: [], user: { id: owner.id, name: 'Test script-owner' } });
    expect(res.body.data.user).not.toHaveProperty('email');
    expect(res.body.data.logs.length).toBeGreaterThan(1);
    const list = await api('GET', `/api/v1/script?filter=${encodeURIComponent(`slug=${slugOf(name)}`)}`, { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ page: 1, total: 1, data: [{ id }] });
  });

  it("is embedded in its owner's profile with include=scripts", async () => {
    const me = await api('GET', '/api/v1/user/me?include=scripts', { token: owner.token });
    expect(me.status).toBe(200);
    expect(me.body.data.scripts.map((s: { id: string }) => s.id)).toContain(id);
    const plain = await api('GET', '/api/v1/user/me', { token: owner.token });
    expect(plain.body.data).not.toHaveProperty('scripts');
    const listed = await api('GET', `/api/v1/user?include=scripts&filter=${encodeURIComponent(`id=${owner.id}`)}`, { token: admin.token });
    expect(listed.status).toBe(200);
    expect(listed.body.data[0].scripts.map((s: { id: string }) => s.id)).toContain(id);
  });

  it('takes a new version with the same requirements: the slug stays and the build is fast', async () => {
    const v2 = cliArchive(`${name} renamed`, { main: 'def run(params, logger):\n    return "OK v2"\n' });
    const res = await upload(owner.token, v2, `${name} v2.tar.gz`, id);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ id, slug: slugOf(name), version: 2 });
    expect(['PENDING', 'BUILDING']).toContain(res.body.data.status);
    const built = await waitForStatus(owner.token, id);
    expect(built.script.status).toBe('SUCCESS');
    // The environment is reused (the build says so), not made again.
    const buildLog = await api('GET', `/api/v1/script/${id}/log`, { token: owner.token });
    expect(buildLog.status).toBe(200);
    const texts = (buildLog.body.data as { text: string }[]).map((l) => l.text);
    const v2Lines = texts.slice(texts.findIndex((t) => t.startsWith('Build: version 2 received')));
    expect(v2Lines.some((t) => /^Build: environment [0-9a-f]{12} reused$/.test(t))).toBe(true);
    process.stderr.write(`[scripts] re-upload with unchanged requirements built in ${built.ms} ms\n`);
    const download = await rawGet(`/api/v1/script/${id}/download`, { Authorization: `Bearer ${owner.token}` });
    expect(download.body.equals(v2)).toBe(true);

    const meta = await api('PATCH', `/api/v1/script/${id}`, { token: owner.token, body: { description: 'Land degradation' } });
    expect(meta.status).toBe(200);
    expect(meta.body.data).toMatchObject({ description: 'Land degradation', slug: slugOf(name), version: 2 });
  });
});

describe('requirements', () => {
  it('installs one from PyPI (SUCCESS) and ends FAIL naming one that cannot be resolved', async () => {
    const missing = `gef-no-such-package-${unique()}`;
    const [good, bad] = await Promise.all([
      upload(owner.token, cliArchive(`Needs Six ${unique()}`, { requirements: 'six\n' }), 'needs six.tar.gz'),
      upload(owner.token, cliArchive(`Needs Nothing Real ${unique()}`, { requirements: `${missing}==1.0\n` }), 'needs missing.tar.gz'),
    ]);
    expect([good.status, bad.status]).toEqual([200, 200]);
    const [goodBuilt, badBuilt] = await Promise.all([waitForStatus(owner.token, good.body.data.id, undefined, 150_000), waitForStatus(owner.token, bad.body.data.id, undefined, 150_000)]);
    expect(goodBuilt.script.status).toBe('SUCCESS');
    expect((await buildLog(owner.token, good.body.data.id)).some((l) => /six/i.test(l.text))).toBe(true);
    expect(badBuilt.script.status).toBe('FAIL');
    const badLog = await buildLog(owner.token, bad.body.data.id);
    expect(badLog[badLog.length - 1]!.text).toContain(missing);
  });
});

describe('the script itself', () => {
  it('ends FAIL when src/main.py does not compile, with Python’s own error in the build log, before any requirement is installed', async () => {
    const broken = 'def run(params, logger):\n    return {"ok": True\n\nprint("never")\n';
    const res = await upload(owner.token, cliArchive(`Broken Main ${unique()}`, { main: broken, requirements: 'six\n' }), 'broken main.tar.gz');
    expect(res.status).toBe(200);
    const built = await waitForStatus(owner.token, res.body.data.id, undefined, 150_000);
    expect(built.script.status).toBe('FAIL');
    const texts = (await buildLog(owner.token, res.body.data.id)).map((l) => l.text);
    expect(texts.some((t) => /File "src\/main\.py", line \d+/.test(t))).toBe(true);
    expect(texts.at(-1)).toMatch(/src\/main\.py does not compile: SyntaxError: /);
    // Failed before the environment: pip never ran.
    expect(texts.some((t) => /preparing the python3 environment|six/i.test(t))).toBe(false);
  });
});

describe('hostile archives', () => {
  const valid = (name = `Hostile ${unique()}`) => cliMembers(name);
  const withMember = (member: Member) => targz([...valid(), member]);
  const bomb = (): Buffer => {
    // A member declaring 640 MiB, then zeros: gzip members concatenated are one gzip
    // stream, so 40 copies of 16 MiB of zeros compressed (~16 KB each) fill it.
    const head = Buffer.concat([tar(valid()).subarray(0, -1024), tarHeader({ name: 'src/big.bin', size: 640 * 1024 * 1024 })]);
    const zeros = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    return Buffer.concat([gzipSync(head), ...Array.from({ length: 40 }, () => zeros)]);
  };
  let takenName: string;

  beforeAll(async () => {
    takenName = `Taken Slug ${unique()}`;
    const res = await upload(owner.token, cliArchive(takenName), 'taken.tar.gz');
    expect(res.status).toBe(200);
  });

  const cases: [string, () => Buffer, RegExp, string?][] = [
    ['not gzip', () => Buffer.from('this is not a gzip stream at all'.repeat(20)), /not gzip/],
    ['gzip but not tar', () => gzipSync(Buffer.from('plain text, no tar headers here\n'.repeat(100))), /not a tar archive/],
    ['truncated', () => targz(valid()).subarray(0, 120), /truncated/],
    ['an empty file', () => Buffer.alloc(0), /empty/],
    ['an absolute path', () => withMember({ name: '/etc/cron.d/evil', data: 'x' }), /absolute path/],
    ['a .. member', () => withMember({ name: 'src/../../evil.py', data: 'x' }), /'\.\.'/],
    ['a symlink escaping the archive', () => withMember({ name: 'src/escape', type: '2', linkName: '../../../etc/passwd' }), /symlink .* outside/],
    ['a hard link to an outside path', () => withMember({ name: 'src/hard', type: '1', linkName: '/etc/passwd' }), /hardlink .* outside/],
    ['a device file', () => withMember({ name: 'src/tty', type: '3' }), /device file/],
    ['12,000 members', () => targz([...valid(), ...Array.from({ length: 12_000 }, (_, i): Member => ({ name: `src/f${i}.py`, data: '' }))]), /more than 10000 members/],
    ['a gzip bomb beyond the inflated limit', bomb, /more than .* once uncompressed/],
    ['invalid JSON in configuration.json', () => targz([{ name: 'configuration.json', data: '{"name": "x",' }, ...valid().slice(1)]), /not valid JSON/],
    ['no name in configuration.json', () => targz([{ name: 'configuration.json', data: '{"description": "no name"}' }, ...valid().slice(1)]), /'name' is required/],
    ['a configuration.json that is not an object', () => targz([{ name: 'configuration.json', data: '["x"]' }, ...valid().slice(1)]), /must be a JSON object/],
    ['no configuration.json', () => targz(valid().slice(1)), /configuration\.json is missing/],
    ['a taken slug', () => cliArchive(takenName), /slug '.*' already exists/],
    ['a file name without .tar.gz', () => targz(valid()), /named \*\.tar\.gz/, 'script.zip'],
  ];

  it(`refuses ${cases.length} hostile archives with 400 and a clear detail, leaving nothing behind`, async () => {
    const before = artifactFiles();
    const failures: string[] = [];
    for (const [label, make, detail, fileName] of cases) {
      const res = await upload(other.token, make(), fileName ?? `${label}.tar.gz`);
      const body = res.body as { status?: number; detail?: string };
      if (res.status !== 400 || body.status !== 400 || typeof body.detail !== 'string' || !detail.test(body.detail)) {
        failures.push(`${label}: ${res.status} ${res.text.slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
    // No script recorded: the uploader, the only owner these uploads could have, has none.
    // (The whole list is not compared: an earlier file's user deletion may still change it.)
    const mine = await api('GET', `/api/v1/script?filter=${encodeURIComponent(`user_id=${other.id}`)}`, { token: admin.token });
    expect(mine.body.total).toBe(0);

    // No file left in the artifact store (uploads are staged there, then discarded).
    let after = artifactFiles();
    for (let i = 0; i < 20 && after.join() !== before.join(); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = artifactFiles();
    }
    expect(after).toEqual(before);
  });

  it('refuses an upload beyond the upload limit with 413 while it streams', async () => {
    const limit = Number(readStackInfo().env.gateway['UPLOAD_LIMIT_BYTES'] ?? 52_428_800);
    const before = artifactFiles();
    // A well-formed archive (so the checks pass as far as they get) that is too large.
    const tooBig = gzipSync(tar([...valid(), { name: 'src/data.bin', data: randomBytes(limit + 64 * 1024) }]), { level: 1 });
    const res = await upload(other.token, tooBig, 'too big.tar.gz');
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ status: 413, error: 'payload_too_large' });
    let after = artifactFiles();
    for (let i = 0; i < 50 && after.join() !== before.join(); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = artifactFiles();
    }
    expect(after).toEqual(before);
  });
});

describe('visibility and ownership', () => {
  let id: string;
  const anonymous = { id: '', token: '' };

  const callAs = async (who: Account, route: string): Promise<number> => {
    const token = who.token || undefined;
    switch (route) {
      case 'get':
        return (await api('GET', `/api/v1/script/${id}`, { token })).status;
      case 'download':
        return (await rawGet(`/api/v1/script/${id}/download`, token ? { Authorization: `Bearer ${token}` } : {})).status;
      case 'log':
        return (await api('GET', `/api/v1/script/${id}/log`, { token })).status;
      case 'list': {
        const res = await api('GET', `/api/v1/script?per_page=100&filter=${encodeURIComponent(`id=${id}`)}`, { token });
        return res.status === 200 ? (res.body.total === 1 ? 200 : 404) : res.status;
      }
      case 'patch-json':
        return (await api('PATCH', `/api/v1/script/${id}`, { token, body: { description: `changed ${unique()}` } })).status;
      case 'patch-file':
        return (await upload(token, cliArchive(`Visibility ${unique()}`), 'next.tar.gz', id)).status;
      case 'publish':
        return (await api('POST', `/api/v1/script/${id}/publish`, { token })).status;
      case 'unpublish':
        return (await api('POST', `/api/v1/script/${id}/unpublish`, { token })).status;
      default:
        throw new Error(route);
    }
  };

  const reads = ['get', 'download', 'log', 'list'];
  const changes = ['patch-json', 'patch-file', 'publish', 'unpublish'];

  beforeAll(async () => {
    const res = await upload(owner.token, cliArchive(`Visibility ${unique()}`), 'visibility.tar.gz');
    expect(res.status).toBe(200);
    id = res.body.data.id;
  });

  /** Runs every route as one caller and returns route → status. */
  const matrix = async (who: Account, routes: string[]) => {
    const out: Record<string, number> = {};
    for (const route of routes) out[route] = await callAs(who, route);
    return out;
  };
  const expecting = (routes: string[], status: number) => Object.fromEntries(routes.map((r) => [r, status]));

  it('a private script: the owner and ADMIN may do everything, another user sees nothing, anonymous is refused', async () => {
    expect(await matrix(anonymous, [...reads, ...changes])).toEqual(expecting([...reads, ...changes], 401));
    expect(await matrix(other, [...reads, ...changes])).toEqual({ ...expecting(reads, 404), ...expecting(changes, 404) });
    // The publish/unpublish pair leaves it private.
    expect(await matrix(owner, [...reads, ...changes])).toEqual(expecting([...reads, ...changes], 200));
    expect(await matrix(admin, [...reads, ...changes])).toEqual(expecting([...reads, ...changes], 200));
    expect((await api('DELETE', `/api/v1/script/${id}`, { token: other.token })).status).toBe(404);
    expect((await api('DELETE', `/api/v1/script/${id}`)).status).toBe(401);
  });

  it('a public script: another user may read it and not change it (403)', async () => {
    expect((await api('POST', `/api/v1/script/${id}/publish`, { token: owner.token })).body.data.public).toBe(true);
    expect(await matrix(other, [...reads, ...changes])).toEqual({ ...expecting(reads, 200), ...expecting(changes, 403) });
    expect((await api('DELETE', `/api/v1/script/${id}`, { token: other.token })).status).toBe(403);
    // Still public: other's unpublish was refused. Embedded users never carry private fields.
    const seen = await api('GET', `/api/v1/script/${id}?include=user`, { token: other.token });
    expect(seen.body.data.public).toBe(true);
    expect(JSON.stringify(seen.body.data.user ?? {})).not.toMatch(/email|role|password/);
    const asAdmin = await api('GET', `/api/v1/script/${id}?include=user`, { token: admin.token });
    expect(asAdmin.body.data.user).toEqual({ id: owner.id, name: 'Test script-owner', country: '', institution: '' });
  });

  it('lists own and public scripts for a USER and every script for an ADMIN', async () => {
    const privateName = `Private ${unique()}`;
    const created = await upload(owner.token, cliArchive(privateName), 'private.tar.gz');
    const privateId = created.body.data.id as string;
    const ids = async (token: string) => {
      const res = await api('GET', `/api/v1/script?per_page=100&filter=${encodeURIComponent(`user_id=${owner.id}`)}`, { token });
      expect(res.status).toBe(200);
      return (res.body.data as { id: string }[]).map((s) => s.id);
    };
    expect(await ids(owner.token)).toEqual(expect.arrayContaining([id, privateId]));
    expect(await ids(admin.token)).toEqual(expect.arrayContaining([id, privateId]));
    const seenByOther = await ids(other.token);
    expect(seenByOther).toContain(id);
    expect(seenByOther).not.toContain(privateId);
  });

  it('the owner, or an ADMIN, deletes it; then it is gone for everyone', async () => {
    const deleted = await api('DELETE', `/api/v1/script/${id}`, { token: admin.token });
    expect(deleted.status).toBe(200);
    expect(deleted.body.data.id).toBe(id);
    expect(await matrix(owner, reads)).toEqual(expecting(reads, 404));
    const mine = await upload(owner.token, cliArchive(`Deleted By Owner ${unique()}`), 'mine.tar.gz');
    expect((await api('DELETE', `/api/v1/script/${mine.body.data.id}`, { token: owner.token })).status).toBe(200);
    expect((await api('GET', `/api/v1/script/${mine.body.data.id}`, { token: owner.token })).status).toBe(404);
  });
});

describe('an upload whose token is revoked while its body arrives', () => {
  it('is refused 401 token_revoked and stores nothing', async () => {
    const owner = await newUser('slow-upload');
    const name = `Slow Upload ${randomBytes(4).toString('hex')}`;
    const boundary = `----gef${randomBytes(8).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`),
      cliArchive(name),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const url = new URL(`${readStackInfo().urls.gateway}/api/v1/script`);
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': body.length } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      // Half the body, then the logout, then (once the contract's second for refusing the
      // token has passed: the revocation reaches every gateway worker by its own stream) the rest.
      req.write(body.subarray(0, body.length >> 1));
      setTimeout(() => {
        void api('POST', '/auth/logout', { token: owner.token, body: { refresh_token: owner.refresh } }).then((out) => {
          expect(out.status).toBe(200);
          setTimeout(() => req.end(body.subarray(body.length >> 1)), 1100);
        }, reject);
      }, 300);
    });
    const res = await answer;
    expect({ status: res.status, error: JSON.parse(res.body).error }).toEqual({ status: 401, error: 'token_revoked' });
    const again = (await login(owner.email, strongPassword)).access_token;
    const mine = await api('GET', `/api/v1/script?filter=${encodeURIComponent(`slug=${slugOf(name)}`)}`, { token: again });
    expect(mine.body.total).toBe(0);
  });
});

describe('load', () => {
  it('takes twenty uploads at once and builds every one to SUCCESS', async () => {
    const began = Date.now();
    const uploads = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const name = `Concurrent ${i} ${unique()}`;
        return upload(owner.token, cliArchive(name), `${name}.tar.gz`);
      }),
    );
    expect(uploads.map((u) => u.status)).toEqual(Array(20).fill(200));
    const built = await Promise.all(uploads.map((u) => waitForStatus(owner.token, u.body.data.id, undefined, 150_000)));
    expect(built.map((b) => b.script.status)).toEqual(Array(20).fill('SUCCESS'));
    expect(new Set(uploads.map((u) => u.body.data.slug)).size).toBe(20);
    process.stderr.write(`[scripts] twenty uploads to SUCCESS in ${Date.now() - began} ms\n`);
  });
});

/**
 * One Connect unary call (JSON over h2c) straight to a service's port, as any process that
 * reaches it could make, showing `serviceKey` if given.
 */
function rpc(baseUrl: string, path: string, body: unknown, serviceKey?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/json',
      'connect-protocol-version': '1',
      ...(serviceKey ? { [serviceKeyHeader]: serviceKey } : {}),
    });
    let status = 0;
    let text = '';
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      session.close();
      resolve({ status, body: text ? JSON.parse(text) : undefined });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('build log lines from runners (AppendBuildLog)', () => {
  it("need the runners' key and the version's build token: a caller reaching the script service's port without them writes nothing", async () => {
    // The credential is checked before the build's status, so a built version shows it as well.
    const res = await upload(owner.token, cliArchive(`Log Writer ${unique()}`), 'log writer.tar.gz');
    expect(res.status).toBe(200);
    const id = res.body.data.id as string;
    const built = await waitForStatus(owner.token, id);
    expect(built.script.status).toBe('SUCCESS');
    const log = await buildLog(owner.token, id);
    // The runner's own lines arrived with its token.
    expect(log.some((l) => /^Build: preparing the python3 environment on runner /.test(l.text))).toBe(true);
    expect(log.some((l) => l.text === 'Build: src/main.py compiles')).toBe(true);

    const base = readStackInfo().urls['script']!;
    const path = '/gef.script.v1.ScriptService/AppendBuildLog';
    const forged = [
      { label: 'no token', extra: {} },
      { label: 'not a token', extra: { buildToken: 'not-a-token' } },
      {
        label: 'signed with another key',
        extra: {
          buildToken:
            'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzY29wZSI6ImJ1aWxkIiwiYXR0IjoxLCJzdWIiOiIwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDAiLCJpc3MiOiJnZWYtc2NyaXB0IiwiYXVkIjoiZ2VmLXNjcmlwdCIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5LXNpZ25hdHVyZQ',
        },
      },
    ];
    // Without the runners' key nothing is even looked at.
    const keyless = await rpc(base, path, { scriptId: id, version: 1, lines: ['written without a key'] });
    expect({ status: keyless.status, code: keyless.body?.code }).toEqual({ status: 503, code: 'unavailable' });
    // With it (a runner, or whoever took a runner's key), the build token decides.
    for (const { label, extra } of forged) {
      const answer = await rpc(base, path, { scriptId: id, version: 1, lines: [`written by ${label}`], ...extra }, runnerKeyDevSecret.devValue);
      expect({ label, status: answer.status, code: answer.body?.code }).toEqual({ label, status: 401, code: 'unauthenticated' });
    }
    expect(await buildLog(owner.token, id)).toEqual(log);
  });
});
