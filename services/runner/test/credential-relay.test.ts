/**
 * Index and proxy credentials relayed by the runner: pip installs from an index that needs
 * them, and through a proxy that needs them, while the build code of the package it builds
 * from source finds them nowhere (its own environment, pip's environment or command line).
 * Real pip and venv; the private index and the proxy are local servers of this test; the
 * proxy case reaches PyPI through the proxy.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@gef/common';
import { loadConfig } from '../src/config';
import { startCredentialRelay, type CredentialRelay } from '../src/environments/credential-relay';
import { ensureEnvironment, type EnvironmentSettings } from '../src/environments/ensure-environment';

const logger = createLogger('runner-test', 'silent');
const password = 'relay-Secret-7f3a!';
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

const backend = `
import json, os, zipfile

def _capture():
    seen = {"env": dict(os.environ)}
    for name in ("environ", "cmdline"):
        try:
            with open("/proc/%d/%s" % (os.getppid(), name), "rb") as f:
                seen["pip_" + name] = f.read().decode("utf8", "replace")
        except OSError as err:
            seen["pip_" + name] = str(err)
    with open(os.environ["GEF_PROBE_OUT"], "a") as f:
        f.write(json.dumps(seen) + "\\n")

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _capture()
    dist = "gef_relay_probe-1.0.dist-info"
    files = {
        dist + "/METADATA": "Metadata-Version: 2.1\\nName: gef-relay-probe\\nVersion: 1.0\\n",
        dist + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        "gef_relay_probe.py": "X = 1\\n",
    }
    name = "gef_relay_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for member, text in files.items():
            z.writestr(member, text)
        z.writestr(dist + "/RECORD", "".join(m + ",,\\n" for m in files) + dist + "/RECORD,,\\n")
    return name
`;

/** An sdist whose build backend records what it can see of credentials. */
function probeSdist(dir: string): Buffer {
  const root = path.join(dir, 'gef_relay_probe-1.0');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'pyproject.toml'), '[build-system]\nrequires = []\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n');
  fs.writeFileSync(path.join(root, 'probe_backend.py'), backend);
  fs.writeFileSync(path.join(root, 'PKG-INFO'), 'Metadata-Version: 2.1\nName: gef-relay-probe\nVersion: 1.0\n');
  return execFileSync('tar', ['-czf', '-', '-C', dir, 'gef_relay_probe-1.0']);
}

/** A private index needing Basic credentials; its page links the file by its absolute URL. */
async function privateIndex(sdist: Buffer, tlsOptions?: https.ServerOptions) {
  const seen: { path: string; authorized: boolean; headers: http.IncomingHttpHeaders }[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const authorized = req.headers.authorization === basic('reader', password);
    seen.push({ path: req.url ?? '', authorized, headers: req.headers });
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="private"' }).end();
      return;
    }
    const origin = `${tlsOptions ? 'https' : 'http'}://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    if (req.url === '/simple/gef-relay-probe') {
      res.writeHead(301, { location: '/simple/gef-relay-probe/' }).end();
    } else if (req.url === '/simple/gef-relay-probe/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><body><a href="${origin}/files/gef_relay_probe-1.0.tar.gz">gef_relay_probe-1.0.tar.gz</a></body></html>`);
    } else if (req.url === '/files/gef_relay_probe-1.0.tar.gz') {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': sdist.length }).end(sdist);
    } else {
      res.writeHead(404).end();
    }
  };
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const scheme = tlsOptions ? 'https' : 'http';
  return { server, seen, url: `${scheme}://reader:${encodeURIComponent(password)}@127.0.0.1:${(server.address() as net.AddressInfo).port}/simple/` };
}

/** An HTTP proxy needing Basic credentials (CONNECT tunnels only, as pip's HTTPS needs). */
async function authenticatingProxy(secret = password) {
  const connects: { target: string; authorized: boolean }[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const authorized = req.headers['proxy-authorization'] === basic('proxier', secret);
    connects.push({ target: req.url ?? '', authorized });
    client.on('error', () => undefined);
    if (!authorized) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="proxy"\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    // Either side closing closes the other (a paused side would never see its end).
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, connects, port: (server.address() as net.AddressInfo).port, url: `http://proxier:${encodeURIComponent(secret)}@127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

describe('credential relay', () => {
  let work: string;
  let base: EnvironmentSettings;
  let relays: CredentialRelay[] = [];
  const servers: http.Server[] = [];

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-relay-'));
    const config = loadConfig({ ...process.env, GEF_DATA_DIR: work });
    base = { dataDir: work, python: config.PYTHON, processEnv: config.toolEnv, pipTimeoutMs: 300_000 };
  });
  afterEach(async () => {
    await Promise.all(relays.map((r) => r.close()));
    relays = [];
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    fs.rmSync(work, { recursive: true, force: true });
  });

  const settingsFor = (env: Record<string, string>, dir: string): EnvironmentSettings => ({ ...base, dataDir: dir, processEnv: env });

  it('leaves an environment without credentials as it is, and listens on nothing', async () => {
    const env = { PATH: '/usr/bin', PIP_INDEX_URL: 'https://mirror.example/simple', HTTPS_PROXY: 'http://proxy.example:3128' };
    const relay = await startCredentialRelay(env, logger);
    relays.push(relay);
    expect(relay.env).toBe(env);
    expect(relay.ports).toEqual([]);
  });

  it('gives pip addresses without credentials, and keeps the others as they are', async () => {
    const env = {
      PIP_INDEX_URL: 'https://reader:pw%40x@index.example/simple',
      PIP_EXTRA_INDEX_URL: 'https://pypi.org/simple https://reader:pw%40x@index.example/extra/',
      PIP_FIND_LINKS: '/srv/wheels',
      HTTPS_PROXY: 'proxier:pw@proxy.example:3128',
      NO_PROXY: 'internal.example',
    };
    const relay = await startCredentialRelay(env, logger);
    relays.push(relay);
    const [index, proxy] = relay.ports;
    expect(relay.env).toMatchObject({
      PIP_INDEX_URL: `http://127.0.0.1:${index}/simple`,
      PIP_EXTRA_INDEX_URL: `https://pypi.org/simple http://127.0.0.1:${index}/extra/`,
      PIP_FIND_LINKS: '/srv/wheels',
      HTTPS_PROXY: `http://127.0.0.1:${proxy}`,
      PIP_TRUSTED_HOST: `127.0.0.1:${index}`,
      NO_PROXY: 'internal.example,127.0.0.1',
    });
    expect(JSON.stringify(relay.env)).not.toMatch(/pw/);
  });

  it('relays a proxy with credentials whichever variable names it, pip’s own --proxy too', async () => {
    const env = { PIP_PROXY: 'http://proxier:pw@corp.example:3128', HTTPS_PROXY: 'http://corp.example:3128', https_proxy: 'http://other:pw@corp.example:3129' };
    const relay = await startCredentialRelay(env, logger);
    relays.push(relay);
    expect(relay.ports).toHaveLength(2);
    expect(relay.env['HTTPS_PROXY']).toBe('http://corp.example:3128');
    expect(relay.env['PIP_PROXY']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(relay.env['https_proxy']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(relay.env['PIP_PROXY']).not.toBe(relay.env['https_proxy']);
    expect(JSON.stringify(relay.env)).not.toMatch(/pw/);
  });

  it('relays GET and HEAD without a body, with pip’s headers only, and redirects and links to the relay', async () => {
    const index = await privateIndex(probeSdist(fs.mkdtempSync(path.join(work, 'sdist-'))));
    servers.push(index.server);
    const relay = await startCredentialRelay({ PIP_INDEX_URL: index.url }, logger);
    relays.push(relay);
    const port = relay.ports[0]!;
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
        let answer = '';
        socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
      });
    const seenBefore = index.seen.length;
    // A body (which an upstream connection could read as a request of its own) and other methods: refused here.
    expect(await raw('GET /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nDELETE /files/x HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /simple/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('DELETE /files/gef_relay_probe-1.0.tar.gz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 405/);
    // Nothing of the host but the index's paths and what its pages link (an API key, an admin page).
    expect(await raw('GET /api/security/apiKey HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 403/);
    expect(await raw('GET /simple/../api/security/apiKey HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /simple/%2e%2e/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /files/gef_relay_probe-1.0.tar.gz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 403/);
    expect(index.seen.length).toBe(seenBefore);

    const page = await fetch(`http://127.0.0.1:${port}/simple/gef-relay-probe/`, { headers: { 'x-http-method-override': 'DELETE', authorization: 'Basic Zm9vOmJhcg==' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`href="http://127.0.0.1:${port}/files/gef_relay_probe-1.0.tar.gz"`);
    const last = index.seen.at(-1)!;
    expect(last).toMatchObject({ path: '/simple/gef-relay-probe/', authorized: true });
    expect(last.headers['x-http-method-override']).toBeUndefined();
    // A redirect to a path of the origin's (relative) points at the relay.
    const moved = await fetch(`http://127.0.0.1:${port}/simple/gef-relay-probe`, { redirect: 'manual' });
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe(`http://127.0.0.1:${port}/simple/gef-relay-probe/`);
    const file = await fetch(`http://127.0.0.1:${port}/files/gef_relay_probe-1.0.tar.gz`, { method: 'HEAD' });
    expect(file.status).toBe(200);
  });

  it('answers 502 to an upstream status no server may send, and goes on relaying', async () => {
    const odd = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end('HTTP/1.1 000 Odd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
    const relay = await startCredentialRelay({ PIP_INDEX_URL: `http://u:p@127.0.0.1:${(odd.address() as net.AddressInfo).port}/simple/` }, logger);
    relays.push(relay);
    try {
      for (let i = 0; i < 2; i++) expect((await fetch(`http://127.0.0.1:${relay.ports[0]}/simple/x/`)).status).toBe(502);
    } finally {
      odd.close();
    }
  });

  it('installs from an index needing credentials, whose package’s build code finds none', async () => {
    const sdist = probeSdist(fs.mkdtempSync(path.join(work, 'sdist-')));
    const index = await privateIndex(sdist);
    servers.push(index.server);
    const out = path.join(work, 'probe-relayed.jsonl');
    const relay = await startCredentialRelay({ ...base.processEnv, PIP_INDEX_URL: index.url }, logger);
    relays.push(relay);
    const env = await ensureEnvironment(settingsFor({ ...relay.env, GEF_PROBE_OUT: out }, fs.mkdtempSync(path.join(work, 'relayed-'))), 'python3', 'gef-relay-probe==1.0\n');
    expect(execFileSync(env.python, ['-c', 'import gef_relay_probe; print(gef_relay_probe.X)']).toString().trim()).toBe('1');

    // The index was asked for the page and the file (by its absolute link), always with its credentials.
    expect(index.seen.map((s) => s.path)).toEqual(expect.arrayContaining(['/simple/gef-relay-probe/', '/files/gef_relay_probe-1.0.tar.gz']));
    expect(index.seen.every((s) => s.authorized)).toBe(true);
    const seen = fs.readFileSync(out, 'utf8');
    expect(seen).toContain('GEF_PROBE_OUT');
    expect(seen).toContain(`127.0.0.1:${relay.ports[0]}`);
    expect(seen).not.toContain(password);
    expect(seen).not.toContain(encodeURIComponent(password));
    expect(seen).not.toContain(basic('reader', password).slice(6));
  }, 300_000);

  it('without the relay, the same build code reads the credentials (what the relay prevents)', async () => {
    const sdist = probeSdist(fs.mkdtempSync(path.join(work, 'sdist-')));
    const index = await privateIndex(sdist);
    servers.push(index.server);
    const out = path.join(work, 'probe-direct.jsonl');
    await ensureEnvironment(settingsFor({ ...base.processEnv, PIP_INDEX_URL: index.url, GEF_PROBE_OUT: out }, fs.mkdtempSync(path.join(work, 'direct-'))), 'python3', 'gef-relay-probe==1.0\n');
    expect(fs.readFileSync(out, 'utf8')).toContain(encodeURIComponent(password));
  }, 300_000);

  it('installs from PyPI through a proxy needing credentials, tunnelled with them', async () => {
    const proxy = await authenticatingProxy();
    servers.push(proxy.server);
    const relay = await startCredentialRelay({ ...base.processEnv, HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url }, logger);
    relays.push(relay);
    expect(JSON.stringify(relay.env)).not.toContain(encodeURIComponent(password));
    const env = await ensureEnvironment(settingsFor(relay.env, fs.mkdtempSync(path.join(work, 'proxied-'))), 'python3', 'six==1.17.0\n');
    expect(execFileSync(env.python, ['-c', 'import six; print(six.__version__)']).toString().trim()).toBe('1.17.0');
    expect(proxy.connects.map((c) => c.target)).toEqual(expect.arrayContaining(['pypi.org:443', 'files.pythonhosted.org:443']));
    expect(proxy.connects.every((c) => c.authorized)).toBe(true);
  }, 300_000);

  it('reaches an HTTPS index with its own CA through a proxy, both needing credentials', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'tls-'));
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const index = await privateIndex(probeSdist(fs.mkdtempSync(path.join(work, 'sdist-'))), { key: fs.readFileSync(key), cert: fs.readFileSync(cert) });
    const proxy = await authenticatingProxy();
    servers.push(index.server, proxy.server);
    const relay = await startCredentialRelay({ ...base.processEnv, PIP_INDEX_URL: index.url, HTTPS_PROXY: proxy.url, PIP_CERT: cert }, logger);
    relays.push(relay);
    const out = path.join(work, 'probe-tls.jsonl');
    const env = await ensureEnvironment(settingsFor({ ...relay.env, GEF_PROBE_OUT: out }, fs.mkdtempSync(path.join(work, 'tls-env-'))), 'python3', 'gef-relay-probe==1.0\n');
    expect(execFileSync(env.python, ['-c', 'import gef_relay_probe; print(gef_relay_probe.X)']).toString().trim()).toBe('1');
    expect(index.seen.map((s) => s.path)).toEqual(expect.arrayContaining(['/simple/gef-relay-probe/', '/files/gef_relay_probe-1.0.tar.gz']));
    expect(index.seen.every((s) => s.authorized)).toBe(true);
    // Every request to the index went through the proxy's tunnels, with its credentials.
    expect(proxy.connects.length).toBeGreaterThanOrEqual(2);
    expect(proxy.connects.every((c) => c.authorized && c.target === new URL(index.url).host)).toBe(true);
    expect(fs.readFileSync(out, 'utf8')).not.toContain(encodeURIComponent(password));
  }, 300_000);

  it('sends a password with a stray % as written, and keeps running', async () => {
    const proxy = await authenticatingProxy('bad%zz-pass');
    servers.push(proxy.server);
    const echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const relay = await startCredentialRelay({ HTTPS_PROXY: `http://proxier:bad%zz-pass@127.0.0.1:${proxy.port}` }, logger);
    relays.push(relay);
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(relay.ports[0]!, '127.0.0.1', () => socket.write(`CONNECT 127.0.0.1:${(echo.address() as net.AddressInfo).port} HTTP/1.1\r\n\r\n`));
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('\r\n\r\n') && !text.includes('ping')) socket.write('ping');
          if (text.includes('ping')) socket.end();
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      expect(answer).toContain('ping');
      expect(proxy.connects.at(-1)!.authorized).toBe(true);
    } finally {
      echo.close();
    }
  });
});
