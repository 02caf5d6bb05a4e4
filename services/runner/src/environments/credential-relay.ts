import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { pipeline } from 'node:stream';
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
 * - each index origin with credentials (`https://user:pw@host`, in `PIP_INDEX_URL`,
 *   `PIP_EXTRA_INDEX_URL` or `PIP_FIND_LINKS`) gets a port of its own,
 *   `http://127.0.0.1:<port>`, with the same paths: the relay fetches `https://host/<path>`
 *   with `Authorization: Basic`, GET and HEAD only, for the configured paths (and below
 *   them) and the files its pages and redirects linked, nothing else of the host; it writes
 *   the absolute links and redirects of what it returns that point at `https://host` as
 *   links to itself, so files come through it too (relative links work as they are);
 * - an HTTP proxy with credentials (`HTTP(S)_PROXY`, `ALL_PROXY`, `PIP_PROXY`) becomes
 *   `http://127.0.0.1:<port>`: CONNECT tunnels and plain GET and HEAD requests go on to it
 *   with `Proxy-Authorization`.
 * Requests carry no body and only an allow-list of headers, each on a connection of its own
 * upstream: nothing a client sends can be read as another request there. Anything local may
 * use the relay, as it could an authenticating mirror, without learning the credentials.
 */

export interface CredentialRelay {
  /** The environment for venv and pip: the relay's addresses where credentials were. */
  env: Record<string, string>;
  /** The relay's ports (none when nothing needed credentials). */
  ports: number[];
  close(): Promise<void>;
}

const indexVariables = ['PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_FIND_LINKS'] as const;
/** Proxy variables in the order pip uses them: its own `--proxy` first, then as requests reads them (lower case first). */
const proxyOrder = {
  https: ['PIP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'],
  http: ['PIP_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'],
} as const;
const proxyVariables = [...new Set([...proxyOrder.https, ...proxyOrder.http])];

/** How long a relayed exchange may stay silent before both sides are closed. */
const idleMs = 120_000;
/** A page larger than this is refused (a project's page on an index is kilobytes to a few MiB). */
const pageLimitBytes = 64 * 1024 * 1024;
/** Pages read whole at once, per index (each up to `pageLimitBytes`); the others wait their turn. */
const pagesAtOnce = 2;
/** Connections each port of the relay serves at once. */
const connectionsPerPort = 64;
/** Paths of an index's files that its pages linked, remembered per index. */
const linkedPathsKept = 200_000;
/** Pages whose links the relay rewrites (PEP 503 HTML, PEP 691 JSON); files pass as they are. */
const pageType = /^(text\/html|application\/vnd\.pypi\.simple\.[a-z0-9.+-]*|application\/json)\b/i;
/** Request headers a relayed GET may carry (pip's, and conditional and partial requests). */
const requestHeaders = ['accept', 'accept-language', 'user-agent', 'range', 'if-none-match', 'if-modified-since', 'if-range', 'cache-control', 'pragma'];
/** Response headers not passed back (hop-by-hop, RFC 9110 §7.6.1). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** A URL written in a variable (a proxy may lack its scheme), or undefined when it is none. */
function urlOf(word: string, proxy: boolean): URL | undefined {
  const text = proxy && !/^[a-z][a-z0-9+.-]*:\/\//i.test(word) ? `http://${word}` : word;
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function hasCredentials(url: URL | undefined): url is URL {
  return url !== undefined && (url.username !== '' || url.password !== '');
}
const withoutCredentials = (url: URL | undefined): url is URL => url !== undefined && url.username === '' && url.password === '';

/** Percent-decoding as pip does it: an escape that is not one stays as written. */
function leniently(text: string): string {
  return text.replace(/(%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

const basic = (url: URL) => `Basic ${Buffer.from(`${leniently(url.username)}:${leniently(url.password)}`).toString('base64')}`;

/** `scheme://host[:port]` of a URL, without its credentials. */
const originOf = (url: URL) => `${url.protocol}//${url.host}`;

const bareHost = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/** Text with every URL of `origin` (`https://host`, then a path or the URL's end) pointing at `base` instead. */
function toRelay(text: string, origin: string, base: string): string {
  const escaped = origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`${escaped}(?=[/?#"'\\s<>]|$)`, 'gi'), base);
}

function pickHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const name of requestHeaders) if (headers[name] !== undefined) out[name] = headers[name];
  return out;
}

function answerHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  return out;
}

/** A status code an HTTP server may send (the upstream's may be anything). */
const sendableStatus = (code: number | undefined) => (code !== undefined && code >= 200 && code <= 599 ? code : 502);

const hasBody = (req: http.IncomingMessage) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

function refuse(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  res.end(`${text}\n`);
}

/** Opens a TCP tunnel to `host:port` through an HTTP proxy; resolves with the socket once it answered 200. */
function tunnel(proxy: URL, auth: string | undefined, host: string, port: number): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxy.port || 80), bareHost(proxy));
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let head = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    // Every error of the socket is handled, for as long as it lives (after the tunnel is
    // up, its user's own handlers act on it as well).
    socket.on('error', (err) => fail(err));
    socket.once('close', () => fail(new Error('the proxy closed the connection')));
    socket.setTimeout(30_000, () => fail(new Error('the proxy did not answer in 30 s')));
    socket.once('connect', () => {
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 65_536) fail(new Error('the proxy answered with an oversized head'));
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (status !== '200') return fail(new Error(`the proxy refused the tunnel to ${target} (${status ?? 'no status'})`));
      settled = true;
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

/** Both sides closed once either ends, errs or stays silent for `idleMs`. */
function joined(a: Duplex & { setTimeout?: (ms: number, cb: () => void) => unknown }, b: Duplex & { setTimeout?: (ms: number, cb: () => void) => unknown }): void {
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end);
  b.on('error', end);
  a.on('close', end);
  b.on('close', end);
  a.setTimeout?.(idleMs, end);
  b.setTimeout?.(idleMs, end);
}

/** TLS settings pip would use for an index: its CA bundle, client certificate and trusted hosts. */
function tlsSettings(env: Record<string, string>, logger: Logger) {
  const read = (name: string) => {
    const file = env[name];
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      logger.warn({ variable: name, err: String(err) }, 'a certificate file of the build environment cannot be read: the relay uses the default');
      return undefined;
    }
  };
  const ca = read('PIP_CERT') ?? read('REQUESTS_CA_BUNDLE') ?? read('SSL_CERT_FILE');
  const client = read('PIP_CLIENT_CERT');
  const trusted = new Set((env['PIP_TRUSTED_HOST'] ?? '').split(/\s+/).filter(Boolean).map((h) => h.toLowerCase()));
  return (url: URL): tls.ConnectionOptions => ({
    ...(ca ? { ca } : {}),
    ...(client ? { cert: client, key: client } : {}),
    // pip's --trusted-host: its certificate is not checked.
    ...(trusted.has(url.host.toLowerCase()) || trusted.has(url.hostname.toLowerCase()) ? { rejectUnauthorized: false } : {}),
    // The name (or address) the certificate must be for; SNI for a name only.
    host: bareHost(url),
    servername: net.isIP(bareHost(url)) ? '' : bareHost(url),
  });
}

/** At most `limit` holders at once; the others wait in order. */
function semaphore(limit: number) {
  let held = 0;
  const waiting: (() => void)[] = [];
  return {
    acquire: () =>
      new Promise<void>((resolve) => {
        if (held < limit) {
          held++;
          resolve();
        } else {
          waiting.push(resolve);
        }
      }),
    release: () => {
      const next = waiting.shift();
      if (next) next();
      else held--;
    },
  };
}

/**
 * The same-origin paths a page links (HTML `href`/`src`, PEP 691 JSON `url`), resolved
 * against the page's URL, with their PEP 658 metadata files.
 */
function linkedPaths(text: string, page: URL): string[] {
  const found: string[] = [];
  const add = (raw: string) => {
    let url: URL;
    try {
      url = new URL(raw.replace(/&amp;/g, '&'), page);
    } catch {
      return;
    }
    if (originOf(url) !== originOf(page)) return;
    found.push(url.pathname, `${url.pathname}.metadata`);
  };
  for (const m of text.matchAll(/\b(?:href|src)\s*=\s*(["'])([^"']*)\1/gi)) add(m[2]!);
  for (const m of text.matchAll(/"url"\s*:\s*"([^"]*)"/g)) add(m[1]!);
  return found;
}

/** A path the relay may ask an index for: no encoded dot, slash or backslash, no dot segment. */
const plainPath = (raw: string) => !/%2e|%2f|%5c/i.test(raw) && !/(^|\/)\.\.?(\/|$)/.test(raw.split('?')[0]!);

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/**
 * Starts the relay when an index or proxy of `env` carries credentials; otherwise answers
 * `env` as it is, and listens on nothing.
 */
export async function startCredentialRelay(env: Record<string, string>, logger: Logger): Promise<CredentialRelay> {
  // Every plain-HTTP proxy with credentials, whichever variable names it, is relayed (pip
  // picks among the variables as it always does; each names the relay then).
  const proxies = new Map<string, URL>();
  for (const name of proxyVariables) {
    const url = env[name] ? urlOf(env[name].trim(), true) : undefined;
    if (!hasCredentials(url)) continue;
    if (url.protocol === 'http:') proxies.set(url.href, url);
    else logger.warn({ variable: name, protocol: url.protocol }, 'a proxy with credentials not reached over plain HTTP is given to builds as configured: its credentials reach their build code');
  }
  // Every index origin with credentials, with the paths configured under it.
  const indexes = new Map<string, { url: URL; prefixes: string[] }>();
  for (const name of indexVariables) {
    for (const word of (env[name] ?? '').split(/\s+/)) {
      const url = urlOf(word, false);
      if (!hasCredentials(url) || (url.protocol !== 'http:' && url.protocol !== 'https:')) continue;
      const key = `${url.username}:${url.password}@${originOf(url)}`;
      const entry = indexes.get(key) ?? { url, prefixes: [] };
      entry.prefixes.push(url.pathname);
      indexes.set(key, entry);
    }
  }
  if (indexes.size === 0 && proxies.size === 0) return { env, ports: [], close: async () => undefined };

  const servers: http.Server[] = [];
  const sockets = new Set<Duplex>();
  const serve = async (handle: (server: http.Server) => void) => {
    const server = http.createServer();
    servers.push(server);
    server.maxConnections = connectionsPerPort;
    // A client that stops sending or reading is dropped.
    server.setTimeout(idleMs);
    server.on('connection', (socket: net.Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    handle(server);
    return `http://127.0.0.1:${await listen(server)}`;
  };
  const tlsFor = tlsSettings(env, logger);
  const out: Record<string, string> = { ...env };
  const indexHosts: string[] = [];

  /** Where an upstream request to `target` goes: through the proxy pip would use, unless NO_PROXY names it. */
  const noProxy = (env['no_proxy'] ?? env['NO_PROXY'] ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase().replace(/^\./, '').replace(/:\d+$/, ''))
    .filter(Boolean);
  const proxyFor = (target: URL): { url: URL; auth?: string } | undefined => {
    const host = bareHost(target).toLowerCase();
    if (noProxy.some((n) => n === '*' || host === n || host.endsWith(`.${n}`))) return undefined;
    const name = proxyOrder[target.protocol === 'https:' ? 'https' : 'http'].find((n) => env[n]?.trim());
    const url = name ? urlOf(env[name]!.trim(), true) : undefined;
    if (!url || url.protocol !== 'http:') return undefined;
    return { url, ...(hasCredentials(url) ? { auth: basic(url) } : {}) };
  };

  /** One request to an index's origin, with its credentials, on a connection of its own. */
  async function upstreamRequest(target: URL, method: string, headers: http.OutgoingHttpHeaders, authorization: string): Promise<{ response: http.IncomingMessage; request: http.ClientRequest }> {
    const proxy = proxyFor(target);
    const options: https.RequestOptions = { method, headers: { ...headers, host: target.host, authorization, 'accept-encoding': 'identity', connection: 'close' } };
    let request: http.ClientRequest;
    if (proxy && target.protocol === 'https:') {
      const { socket, rest } = await tunnel(proxy.url, proxy.auth, bareHost(target), Number(target.port || 443));
      // Bytes the proxy sent after its answer's head are the origin's: TLS reads them first.
      if (rest.length > 0) socket.unshift(rest);
      const secure = tls.connect({ socket, ...tlsFor(target) });
      // The tunnel goes with its TLS connection, however that ends.
      secure.on('error', () => socket.destroy());
      secure.on('close', () => socket.destroy());
      // No agent: the request goes on this connection, and the connection goes with it.
      request = https.request(target, { ...options, createConnection: () => secure });
    } else if (proxy) {
      request = http.request({
        host: bareHost(proxy.url),
        port: Number(proxy.url.port || 80),
        path: `${originOf(target)}${target.pathname}${target.search}`,
        ...options,
        agent: false,
        headers: { ...options.headers, ...(proxy.auth ? { 'proxy-authorization': proxy.auth } : {}) },
      });
    } else if (target.protocol === 'https:') {
      request = https.request(target, { ...options, ...tlsFor(target), agent: false });
    } else {
      request = http.request(target, { ...options, agent: false });
    }
    request.on('close', () => request.socket?.destroy());
    return new Promise((resolve, reject) => {
      request.setTimeout(idleMs, () => request.destroy(new Error(`the index did not answer in ${idleMs / 1000} s`)));
      request.once('response', (response) => resolve({ response, request }));
      // An upstream that switches protocols is not an index.
      request.once('upgrade', (_res, socket: net.Socket) => {
        socket.destroy();
        reject(new Error('the index switched protocols'));
      });
      request.once('error', reject);
      request.end();
    });
  }

  for (const { url: index, prefixes } of indexes.values()) {
    const origin = originOf(index);
    const authorization = basic(index);
    const pages = semaphore(pagesAtOnce);
    // The paths its pages and redirects linked (the files, wherever the index keeps them).
    const linked = new Set<string>();
    const link = (paths: string[]) => {
      for (const path of paths) {
        linked.delete(path);
        linked.add(path);
        if (linked.size > linkedPathsKept) linked.delete(linked.values().next().value!);
      }
    };
    const under = (path: string) => prefixes.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`));
    let base = '';
    const relay = async (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'only GET and HEAD are relayed');
      if (hasBody(req)) return refuse(res, 400, 'a relayed request carries no body');
      const raw = req.url ?? '';
      if (!raw.startsWith('/') || !plainPath(raw)) return refuse(res, 400, 'a relayed request names a plain path');
      const target = new URL(`${origin}${raw}`);
      // The index's configured paths, and what its pages linked: nothing else of the host.
      if (!under(target.pathname) && !linked.has(target.pathname)) return refuse(res, 403, 'not a path of the index');
      const { response: upstream, request } = await upstreamRequest(target, req.method, pickHeaders(req.headers), authorization);
      res.on('close', () => request.destroy());
      const headers = answerHeaders(upstream.headers);
      const location = upstream.headers.location;
      if (location) {
        // Relative redirects are resolved against the origin's URL, then pointed at the relay.
        const resolved = urlOf(location, false) ?? new URL(location, target);
        if (originOf(resolved) === origin) link([resolved.pathname]);
        headers['location'] = toRelay(resolved.href, origin, base);
      }
      const length = Number(upstream.headers['content-length'] ?? 0);
      const page = req.method === 'GET' && pageType.test(upstream.headers['content-type'] ?? '') && !upstream.headers['content-encoding'];
      if (!page) {
        res.writeHead(sendableStatus(upstream.statusCode), headers);
        pipeline(upstream, res, () => undefined);
        return;
      }
      if (length > pageLimitBytes) throw new Error(`an index page over ${pageLimitBytes / 1024 ** 2} MiB`);
      await pages.acquire();
      let body: Buffer;
      try {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of upstream) {
          size += (chunk as Buffer).length;
          if (size > pageLimitBytes) throw new Error(`an index page over ${pageLimitBytes / 1024 ** 2} MiB`);
          chunks.push(chunk as Buffer);
        }
        const text = Buffer.concat(chunks).toString('utf8');
        link(linkedPaths(text, target));
        body = Buffer.from(toRelay(text, origin, base), 'utf8');
      } finally {
        pages.release();
      }
      delete headers['content-length'];
      delete headers['etag'];
      res.writeHead(sendableStatus(upstream.statusCode), { ...headers, 'content-length': body.length });
      res.end(body);
    };
    base = await serve((server) =>
      server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        relay(req, res).catch((err: unknown) => {
          const message = withoutUrlCredentials(err instanceof Error ? err.message : String(err));
          logger.warn({ index: origin, err: message }, 'a relayed index request failed');
          refuse(res, 502, `the index failed: ${message}`);
        });
      }),
    );
    indexHosts.push(base.slice('http://'.length));
    for (const name of indexVariables) {
      if (!out[name]) continue;
      out[name] = out[name]
        .split(/(\s+)/)
        .map((w) => {
          const url = urlOf(w, false);
          return hasCredentials(url) && url.username === index.username && url.password === index.password && originOf(url) === origin ? `${base}${url.pathname}${url.search}` : w;
        })
        .join('');
    }
  }

  const proxySelf = new Map<string, string>();
  for (const proxy of proxies.values()) {
    const auth = basic(proxy);
    const self = await serve((server) => {
      // A plain-HTTP request sent as to a proxy (absolute-form): on to the proxy, with its credentials.
      server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'only GET and HEAD are relayed');
        if (hasBody(req)) return refuse(res, 400, 'a relayed request carries no body');
        const target = urlOf(req.url ?? '', false);
        if (!withoutCredentials(target) || target.protocol !== 'http:') return refuse(res, 400, 'a relayed request names an http:// URL');
        const upstream = http.request({
          host: bareHost(proxy),
          port: Number(proxy.port || 80),
          method: req.method,
          path: target.href,
          agent: false,
          headers: { ...pickHeaders(req.headers), host: target.host, connection: 'close', 'proxy-authorization': auth },
        });
        upstream.setTimeout(idleMs, () => upstream.destroy(new Error('the proxy did not answer')));
        res.on('close', () => upstream.destroy());
        upstream.once('response', (answer) => {
          try {
            res.writeHead(sendableStatus(answer.statusCode), answerHeaders(answer.headers));
          } catch {
            answer.destroy();
            return refuse(res, 502, 'the proxy answered what cannot be passed on');
          }
          pipeline(answer, res, () => undefined);
        });
        upstream.once('upgrade', (_answer, socket: net.Socket) => {
          socket.destroy();
          refuse(res, 502, 'the proxy switched protocols');
        });
        upstream.once('error', (err) => refuse(res, 502, `the proxy failed: ${withoutUrlCredentials(err.message)}`));
        upstream.end();
      });
      server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
        client.on('error', () => client.destroy());
        const target = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(req.url ?? '');
        if (!target) {
          client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
          return;
        }
        tunnel(proxy, auth, target[1]!, Number(target[2]))
          .then(({ socket, rest }) => {
            if (client.destroyed) {
              socket.destroy();
              return;
            }
            joined(socket, client as net.Socket);
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
    });
    proxySelf.set(proxy.href, self);
  }
  for (const name of proxyVariables) {
    const url = env[name] ? urlOf(env[name].trim(), true) : undefined;
    const self = url ? proxySelf.get(url.href) : undefined;
    if (self) out[name] = self;
  }

  // The relayed indexes are plain HTTP on the loopback address.
  out['PIP_TRUSTED_HOST'] = [env['PIP_TRUSTED_HOST'], ...indexHosts].filter(Boolean).join(' ');
  // pip asks the relay directly, never through a proxy.
  for (const name of ['NO_PROXY', 'no_proxy']) out[name] = [env[name], '127.0.0.1'].filter(Boolean).join(',');

  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  logger.info({ ports, indexes: [...indexes.values()].map((i) => originOf(i.url)), proxies: [...proxies.values()].map(originOf) }, 'package index and proxy credentials relayed: builds get none');
  return {
    env: out,
    ports,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
