import { gzipSync } from 'node:zlib';

import { apiUrl, readStackInfo } from '../../harness/stack';

export { apiUrl };

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Send the JSON body gzip-compressed. */
  gzip?: boolean;
  headers?: Record<string, string>;
  /** A raw body (string or bytes) sent as is. */
  raw?: string | Uint8Array;
}

/** One HTTP request to the gateway; the body is parsed as JSON when it is JSON. */
export async function api<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Uint8Array | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
  } else if (options.body !== undefined) {
    const json = JSON.stringify(options.body);
    headers['Content-Type'] ??= 'application/json';
    if (options.gzip) {
      headers['Content-Encoding'] = 'gzip';
      body = gzipSync(json);
    } else {
      body = json;
    }
  }
  if (options.token) headers['Authorization'] = `Bearer ${options.token}`;
  const res = await fetch(`${apiUrl()}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** A unique e-mail address for a test. */
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.org`;
}

export const strongPassword = 'Strong-Passw0rd!';

/** The first SUPERADMIN (development defaults unless the stack set others). */
export function superadminCredentials(): { email: string; password: string } {
  const env = readStackInfo().env.user;
  return { email: env['GEF_ADMIN_EMAIL'] ?? 'admin@gef.local', password: env['GEF_ADMIN_PASSWORD'] ?? 'Admin-Dev-Passw0rd!' };
}

/** Logs in, waiting for the bootstrap SUPERADMIN to exist on a fresh stack. */
export async function login(email: string, password: string, timeoutMs = 60_000): Promise<{ access_token: string; refresh_token: string; user_id: string; expires_in: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api('POST', '/auth', { body: { email, password } });
    if (res.status === 200) return res.body;
    if (Date.now() > deadline) throw new Error(`login of ${email} failed: ${res.status} ${res.text}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * POST /api/v1/user with a new address for `prefix`. A 503 (a part the gateway needs is still
 * coming back after an earlier file restarted it) is retried as clients do, with a new
 * address, for up to a minute; any other answer is returned as it is.
 */
export async function registerUser(prefix: string, body: Record<string, unknown>): Promise<{ email: string; created: ApiResponse }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const email = uniqueEmail(prefix);
    const created = await api('POST', '/api/v1/user', { body: { email, password: strongPassword, ...body } });
    if (created.status !== 503 || Date.now() >= deadline) return { email, created };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Registers a USER with a password and logs in. */
export async function newUser(prefix = 'user'): Promise<{ id: string; email: string; password: string; token: string; refresh: string }> {
  const { email, created } = await registerUser(prefix, { name: `Test ${prefix}` });
  if (created.status !== 200) throw new Error(`registration failed: ${created.status} ${created.text}`);
  const tokens = await login(email, strongPassword);
  return { id: created.body.data.id, email, password: strongPassword, token: tokens.access_token, refresh: tokens.refresh_token };
}

/**
 * A counter from the Prometheus text a process serves at `<url>/metrics` (the gateway's by
 * default, summed over its worker processes): the first sample of `name` whose labels begin
 * with `labels` as written (`cache="profile",result="hit"`); 0 while it has none.
 */
export async function counterValue(name: string, labels: string, url = apiUrl()): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Number(new RegExp(`^${escape(name)}\\{${escape(labels)}[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** A gateway's hit count of one of its caches (`execution`, `execution_list`, `profile`), summed over its worker processes. */
export const cacheHits = (cache: string, url = apiUrl()): Promise<number> => counterValue('gef_gateway_cache_lookups_total', `cache="${cache}",result="hit"`, url);

/**
 * Repeats a read the gateway may answer from `cache` until it counts a hit, and returns every
 * answer. Each gateway worker process has a cache of its own, and the cluster hands each new
 * connection to the next worker, so a second read may meet a worker that has not seen the
 * first. With W workers, W + 1 reads always put two on one worker; `tries` covers up to seven.
 * The hit count it returns is the one after the hit.
 */
export async function readUntilCacheHit<T>(cache: string, read: () => Promise<T>, url = apiUrl(), tries = 8): Promise<{ answers: T[]; before: number; after: number }> {
  const before = await cacheHits(cache, url);
  const answers: T[] = [];
  let after = before;
  while (answers.length < tries && after === before) {
    answers.push(await read());
    after = await cacheHits(cache, url);
  }
  return { answers, before, after };
}
