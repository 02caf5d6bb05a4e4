import http from 'node:http';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The first failure seen, for diagnosis. */
  firstError?: string;
}

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  /** The request body, or one per client (by client index). */
  body?: string | ((client: number) => string);
  concurrency: number;
  durationMs: number;
  /** Status counted as success. */
  expectStatus?: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * A closed-loop load: `concurrency` clients, each sending its next request when the last
 * one answered, over keep-alive connections, for `durationMs`.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const url = new URL(options.url);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const deadline = Date.now() + options.durationMs;
  const one = (client: number) =>
    new Promise<number>((resolve) => {
      const body = typeof options.body === 'function' ? options.body(client) : options.body;
      const started = performance.now();
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method: options.method ?? 'GET',
          headers: { ...(body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}), ...options.headers },
        },
        (res) => {
          const ok = res.statusCode === (options.expectStatus ?? 200);
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            if (!ok && !firstError) chunks.push(c);
          });
          res.on('end', () => {
            if (!ok) firstError ??= `${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`;
            resolve(ok ? performance.now() - started : -1);
          });
        },
      );
      req.on('error', (err) => {
        firstError ??= err.message;
        resolve(-1);
      });
      if (body) req.write(body);
      req.end();
    });
  const began = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, client) => {
      while (Date.now() < deadline) {
        const ms = await one(client);
        if (ms < 0) errors++;
        else latencies.push(ms);
      }
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds: Number(seconds.toFixed(2)),
    perSecond: Number((latencies.length / seconds).toFixed(1)),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    maxMs: Number((latencies[latencies.length - 1] ?? 0).toFixed(2)),
    ...(firstError ? { firstError } : {}),
  };
}

/** A bare node:http server answering the same JSON body (as sent: compressed, when `encoding` says so), for comparison. */
export async function bareServer(body: string | Buffer, encoding?: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...(encoding ? { 'Content-Encoding': encoding } : {}) });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An authenticated read through the gateway beside the bare server answering its JSON. */
export interface ReadComparison {
  gateway: LoadResult;
  bare: LoadResult;
  /** The gateway's rate as a share of the bare server's, measured one after the other. */
  ratio: number;
  concurrency: number;
}

/** One answer's bytes as sent (not decompressed) and its `Content-Encoding`. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: Buffer; encoding: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), encoding: res.headers['content-encoding'] }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/**
 * Loads `GET api+path` with `token` (and `extra` headers, e.g. a client's `User-Agent` and
 * `Accept-Encoding`) after a bare server answering the same bytes, 32 clients each.
 */
export async function readBesideBare(api: string, path: string, token: string, durationMs: number, concurrency = 32, extra: Record<string, string> = {}): Promise<ReadComparison> {
  const headers = { Authorization: `Bearer ${token}`, ...extra };
  const first = await rawGet(`${api}${path}`, headers);
  if (first.status !== 200) throw new Error(`GET ${path}: HTTP ${first.status}`);
  const bare = await bareServer(first.body, first.encoding);
  const bareResult = await runLoad({ url: `${bare.url}${path}`, headers: extra, concurrency, durationMs });
  await bare.close();
  const gateway = await runLoad({ url: `${api}${path}`, headers, concurrency, durationMs });
  return { gateway, bare: bareResult, ratio: Number((gateway.perSecond / bareResult.perSecond).toFixed(3)), concurrency };
}

/** The text lines of one read comparison. */
export function readLines(name: string, read: ReadComparison, line: (name: string, l: LoadResult) => string): string[] {
  return [line(`${name} (${read.concurrency})`, read.gateway), line(`bare node:http, same JSON (${read.concurrency})`, read.bare), `${name} gateway/bare ratio: ${read.ratio}`];
}

/** One load's figures as a line of text. */
export const loadLine = (name: string, r: LoadResult): string => `${name.padEnd(34)} ${String(r.perSecond).padStart(9)} req/s   p50 ${r.p50Ms} ms   p99 ${r.p99Ms} ms   errors ${r.errors}`;
