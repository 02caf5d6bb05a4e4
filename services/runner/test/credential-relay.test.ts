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
async function privateIndex(sdist: Buffer) {
  const seen: { path: string; authorized: boolean }[] = [];
  const server = http.createServer((req, res) => {
    const authorized = req.headers.authorization === basic('reader', password);
    seen.push({ path: req.url ?? '', authorized });
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="private"' }).end();
      return;
    }
    const origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    if (req.url === '/simple/gef-relay-probe/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><body><a href="${origin}/files/gef_relay_probe-1.0.tar.gz">gef_relay_probe-1.0.tar.gz</a></body></html>`);
    } else if (req.url === '/files/gef_relay_probe-1.0.tar.gz') {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': sdist.length }).end(sdist);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, seen, url: `http://reader:${encodeURIComponent(password)}@127.0.0.1:${(server.address() as net.AddressInfo).port}/simple/` };
}

/** An HTTP proxy needing Basic credentials (CONNECT tunnels only, as pip's HTTPS needs). */
async function authenticatingProxy() {
  const connects: { target: string; authorized: boolean }[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const authorized = req.headers['proxy-authorization'] === basic('proxier', password);
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
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, connects, url: `http://proxier:${encodeURIComponent(password)}@127.0.0.1:${(server.address() as net.AddressInfo).port}` };
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
    expect(relay.port).toBeUndefined();
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
    const self = `http://127.0.0.1:${relay.port}`;
    expect(relay.env).toMatchObject({
      PIP_INDEX_URL: `${self}/o/0/simple`,
      PIP_EXTRA_INDEX_URL: `https://pypi.org/simple ${self}/o/0/extra/`,
      PIP_FIND_LINKS: '/srv/wheels',
      HTTPS_PROXY: self,
      PIP_TRUSTED_HOST: `127.0.0.1:${relay.port}`,
      NO_PROXY: 'internal.example,127.0.0.1',
    });
    expect(JSON.stringify(relay.env)).not.toMatch(/pw/);
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
    expect(seen).toContain(`127.0.0.1:${relay.port}`);
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
});
