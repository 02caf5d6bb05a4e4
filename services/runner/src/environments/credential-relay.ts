import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '@gef/common';
import { withoutUrlCredentials } from './url-credentials';

/**
 * Package indexes and proxies that need credentials, reached through the runner itself.
 *
 * pip gives its environment to the build code of every package it builds from source, and a
 * script's requirements choose those packages: credentials written in `PIP_INDEX_URL` or
 * `HTTPS_PROXY` were theirs to read (from their own environment, or pip's, which runs as the
 * same user). With them configured, the runner listens on the loopback address and adds the
 * credentials to what it forwards, holding them in its own memory only; pip and its build
 * code are told the relay's addresses, which carry none:
 * - an index (or `PIP_FIND_LINKS` page) `https://user:pw@host/simple` becomes
 *   `http://127.0.0.1:<port>/o/<n>/simple`: the relay fetches `https://host/…` with
 *   `Authorization: Basic`, and writes the links of the pages it returns that point at
 *   `https://host` as links to itself, so the files come through it too;
 * - a proxy `http://user:pw@proxy:3128` becomes `http://127.0.0.1:<port>`: the relay
 *   forwards CONNECT tunnels and plain requests to it with `Proxy-Authorization`.
 * The relay forwards to those indexes and proxies only; anything local may use it, as it
 * could an authenticating mirror, without learning the credentials.
 */

export interface CredentialRelay {
  /** The environment for venv and pip: the relay's addresses where credentials were. */
  env: Record<string, string>;
  /** The relay's port (none when nothing needed credentials). */
  port?: number;
  close(): Promise<void>;
}

const indexVariables = ['PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_FIND_LINKS'] as const;
const proxyVariables = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'] as const;

/** A URL with credentials; a proxy written without a scheme is an HTTP proxy. */
function credentialedUrl(word: string, proxy: boolean): URL | undefined {
  const text = proxy && !/^[a-z][a-z0-9+.-]*:\/\//i.test(word) ? `http://${word}` : word;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url.username || url.password ? url : undefined;
}

const basic = (url: URL) => `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;

/** `scheme://host[:port]` of a URL, without its credentials. */
const originOf = (url: URL) => `${url.protocol}//${url.host}`;

/** Headers a relay must not pass on (RFC 9110 §7.6.1), and those it sets itself. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'authorization', 'host', 'accept-encoding']);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  return out;
}

/** Pages whose links the relay rewrites (PEP 503 HTML, PEP 691 JSON); files pass as they are. */
const pageType = /^(text\/html|application\/vnd\.pypi\.simple\.[a-z0-9.+-]*|application\/json)\b/i;
/** A page larger than this is passed on unchanged (its links are then not rewritten). */
const pageLimitBytes = 64 * 1024 * 1024;

/** Text with every URL of `origin` (`https://host`, then a path or the URL's end) pointing at the relay's `base` instead. */
function toRelay(text: string, origin: URL, base: string): string {
  const escaped = originOf(origin).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`${escaped}(?=[/?#"'\\s<>]|$)`, 'gi'), base);
}

/** Opens a TCP tunnel to `host:port` through an HTTP proxy; resolves with the socket once it answered 200. */
function tunnel(proxy: URL, host: string, port: number): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxy.port || 80), proxy.hostname.replace(/^\[|\]$/g, ''));
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let head = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(30_000, () => fail(new Error('the proxy did not answer in 30 s')));
    socket.once('error', fail);
    socket.once('connect', () => {
      const auth = proxy.username || proxy.password ? `Proxy-Authorization: ${basic(proxy)}\r\n` : '';
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 65_536) fail(new Error('the proxy answered with an oversized head'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      socket.setTimeout(0);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (status !== '200') return fail(new Error(`the proxy refused the tunnel to ${target} (${status ?? 'no status'})`));
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

function refuse(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  res.end(`${text}\n`);
}

/**
 * Starts the relay when an index or proxy of `env` carries credentials; otherwise answers
 * `env` as it is, and listens on nothing.
 */
export async function startCredentialRelay(env: Record<string, string>, logger: Logger): Promise<CredentialRelay> {
  const origins: URL[] = [];
  const originIndex = (url: URL) => {
    const key = `${url.protocol}//${url.username}:${url.password}@${url.host}`;
    const found = origins.findIndex((o) => `${o.protocol}//${o.username}:${o.password}@${o.host}` === key);
    if (found >= 0) return found;
    origins.push(new URL(`${url.protocol}//${url.username}:${url.password}@${url.host}`));
    return origins.length - 1;
  };
  const proxies: { https?: URL; http?: URL } = {};
  const upper = (name: string) => name.toUpperCase();
  for (const name of proxyVariables) {
    const url = env[name] ? credentialedUrl(env[name].trim(), true) : undefined;
    if (!url) continue;
    if (url.protocol !== 'http:') {
      logger.warn({ variable: name }, 'a proxy reached over TLS is given to builds as configured: its credentials reach their build code');
      continue;
    }
    if (upper(name) !== 'HTTP_PROXY') proxies.https ??= url;
    if (upper(name) !== 'HTTPS_PROXY') proxies.http ??= url;
  }
  const indexWords = indexVariables.flatMap((name) => (env[name] ?? '').split(/\s+/).filter(Boolean));
  if (!indexWords.some((w) => credentialedUrl(w, false)) && !proxies.https && !proxies.http) return { env, close: async () => undefined };

  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const self = `http://127.0.0.1:${port}`;
  const relayed = (url: URL) => `${self}/o/${originIndex(url)}${url.pathname}${url.search}`;

  const out: Record<string, string> = { ...env };
  for (const name of indexVariables) {
    if (!env[name]) continue;
    out[name] = env[name]
      .split(/(\s+)/)
      .map((w) => {
        const url = credentialedUrl(w, false);
        return url ? relayed(url) : w;
      })
      .join('');
  }
  for (const name of proxyVariables) if (env[name] && credentialedUrl(env[name].trim(), true)?.protocol === 'http:') out[name] = self;
  const hostPort = `127.0.0.1:${port}`;
  out['PIP_TRUSTED_HOST'] = [env['PIP_TRUSTED_HOST'], hostPort].filter(Boolean).join(' ');
  for (const name of ['NO_PROXY', 'no_proxy']) out[name] = [env[name], '127.0.0.1'].filter(Boolean).join(',');

  const proxyFor = (url: URL): URL | undefined => {
    const configured = url.protocol === 'https:' ? (proxies.https ?? env['HTTPS_PROXY'] ?? env['https_proxy']) : (proxies.http ?? env['HTTP_PROXY'] ?? env['http_proxy']);
    if (!configured) return undefined;
    const noProxy = (env['NO_PROXY'] ?? env['no_proxy'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const host = url.hostname.toLowerCase();
    if (noProxy.some((n) => n === '*' || host === n.replace(/^\./, '') || host.endsWith(n.startsWith('.') ? n : `.${n}`))) return undefined;
    if (typeof configured !== 'string') return configured;
    try {
      const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(configured) ? configured : `http://${configured}`);
      return url.protocol === 'http:' ? url : undefined;
    } catch {
      return undefined;
    }
  };

  /** A request to an index's origin, with its credentials, through the proxy if there is one. */
  async function upstreamRequest(target: URL, method: string, headers: http.OutgoingHttpHeaders, origin: URL): Promise<http.IncomingMessage> {
    const proxy = proxyFor(target);
    const options: https.RequestOptions = {
      method,
      headers: { ...headers, host: target.host, authorization: basic(origin), 'accept-encoding': 'identity' },
    };
    let request: http.ClientRequest;
    if (proxy && target.protocol === 'https:') {
      const { socket } = await tunnel(proxy, target.hostname.replace(/^\[|\]$/g, ''), Number(target.port || 443));
      request = https.request(target, { ...options, agent: false, createConnection: () => tls.connect({ socket, servername: target.hostname }) });
    } else if (proxy) {
      const auth = proxy.username || proxy.password ? { 'proxy-authorization': basic(proxy) } : {};
      request = http.request({ host: proxy.hostname, port: Number(proxy.port || 80), path: target.href.replace(/\/\/[^@/]*@/, '//'), ...options, headers: { ...options.headers, ...auth } });
    } else {
      request = (target.protocol === 'https:' ? https : http).request(target, options);
    }
    return new Promise((resolve, reject) => {
      request.setTimeout(120_000, () => request.destroy(new Error('the index did not answer in 120 s')));
      request.once('response', resolve);
      request.once('error', reject);
      request.end();
    });
  }

  async function fromIndex(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const match = /^\/o\/(\d+)(\/.*)?$/.exec(req.url ?? '');
    const origin = match ? origins[Number(match[1])] : undefined;
    if (!match || !origin) return refuse(res, 404, 'not a relayed index');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'only GET and HEAD are relayed');
    const target = new URL(`${originOf(origin)}${match[2] ?? '/'}`);
    const base = `${self}/o/${match[1]}`;
    const upstream = await upstreamRequest(target, req.method, forwardable(req.headers), origin);
    const headers = forwardable(upstream.headers);
    const location = upstream.headers.location;
    if (location) headers['location'] = toRelay(location, origin, base);
    const length = Number(upstream.headers['content-length'] ?? 0);
    const page = pageType.test(upstream.headers['content-type'] ?? '') && length <= pageLimitBytes && req.method === 'GET';
    if (!page) {
      res.writeHead(upstream.statusCode ?? 502, headers);
      upstream.pipe(res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of upstream) {
      size += (chunk as Buffer).length;
      if (size > pageLimitBytes) throw new Error('an index page over 64 MiB');
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.from(toRelay(Buffer.concat(chunks).toString('utf8'), origin, base), 'utf8');
    delete headers['content-length'];
    delete headers['etag'];
    res.writeHead(upstream.statusCode ?? 502, { ...headers, 'content-length': body.length });
    res.end(body);
  }

  /** A plain-HTTP request sent to the relay as to a proxy (absolute-form): on to the proxy, with its credentials. */
  function toProxy(req: http.IncomingMessage, res: http.ServerResponse): void {
    const proxy = proxies.http;
    if (!proxy) return refuse(res, 403, 'no proxy is relayed for plain HTTP');
    const upstream = http.request({
      host: proxy.hostname,
      port: Number(proxy.port || 80),
      method: req.method,
      path: req.url,
      headers: { ...forwardable(req.headers), host: req.headers.host ?? '', 'proxy-authorization': basic(proxy) },
    });
    upstream.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
      answer.pipe(res);
    });
    upstream.once('error', (err) => refuse(res, 502, `the proxy failed: ${withoutUrlCredentials(err.message)}`));
    req.pipe(upstream);
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (/^https?:\/\//i.test(req.url ?? '')) return toProxy(req, res);
    fromIndex(req, res).catch((err: unknown) => {
      const message = withoutUrlCredentials(err instanceof Error ? err.message : String(err));
      logger.warn({ err: message }, 'a relayed index request failed');
      refuse(res, 502, `the index failed: ${message}`);
    });
  });

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const proxy = proxies.https;
    const target = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(req.url ?? '');
    client.on('error', () => undefined);
    if (!proxy || !target) {
      client.end(`HTTP/1.1 ${proxy ? 400 : 403} ${proxy ? 'Bad Request' : 'Forbidden'}\r\nConnection: close\r\n\r\n`);
      return;
    }
    tunnel(proxy, target[1]!, Number(target[2]))
      .then(({ socket, rest }) => {
        socket.on('error', () => client.destroy());
        client.on('error', () => socket.destroy());
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (rest.length > 0) client.write(rest);
        if (head.length > 0) socket.write(head);
        socket.pipe(client);
        client.pipe(socket);
      })
      .catch((err: unknown) => {
        const message = withoutUrlCredentials(err instanceof Error ? err.message : String(err));
        logger.warn({ target: req.url, err: message }, 'a relayed tunnel failed');
        client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n');
      });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  logger.info({ port, indexes: origins.map(originOf), proxies: [...new Set([proxies.https, proxies.http].filter(Boolean).map((p) => originOf(p!)))] }, 'package index and proxy credentials relayed: builds get none');
  return {
    env: out,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
