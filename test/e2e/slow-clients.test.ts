/**
 * Slow clients (issue 6, "Hostile input"): while 1,000 idle connections, slowloris-style
 * requests whose headers arrive byte by byte, requests whose bodies are trickled and idle
 * keep-alive connections are all held open against the gateway, a normal client's requests
 * (new connections and kept-alive ones, anonymous and authenticated) keep succeeding; and
 * the gateway closes every slow or idle connection itself, by its timeouts
 * (services/gateway/src/server.ts: headers 20 s, whole request 120 s, keep-alive 65 s,
 * checked every 5 s). No assertion on speed: only that everything is served and closed.
 */
import net from 'node:net';
import http from 'node:http';
import { apiUrl, api, newUser } from './helpers/api';

jest.setTimeout(300_000);

/** The gateway's defaults (server.ts `defaultTimeouts`), plus slack for a busy machine. */
const headersTimeoutMs = 20_000;
const requestTimeoutMs = 120_000;
const keepAliveTimeoutMs = 65_000;
const checkIntervalMs = 5_000;
const slackMs = 30_000;

interface Held {
  kind: 'idle' | 'headers' | 'body' | 'keep-alive';
  socket: net.Socket;
  received: string;
  closedAt?: number;
  timer?: NodeJS.Timeout;
}

const target = () => new URL(apiUrl());

function connect(kind: Held['kind']): Promise<Held> {
  const url = target();
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const held: Held = { kind, socket, received: '' };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      held.received += chunk;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      held.closedAt ??= Date.now();
      if (held.timer) clearInterval(held.timer);
    });
    socket.once('connect', () => resolve(held));
    socket.once('error', reject);
  });
}

/** Writes `text` one byte per `everyMs`, for as long as the connection is open. */
function trickle(held: Held, text: string, everyMs: number): void {
  let at = 0;
  held.timer = setInterval(() => {
    if (held.socket.destroyed || held.closedAt) return;
    held.socket.write(text[at % text.length]!);
    at++;
  }, everyMs);
}

/** One request on a new connection (no keep-alive). */
function freshGet(path: string, token?: string): Promise<number> {
  const url = target();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path, agent: false, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

test('1,000 idle connections, slowloris headers and trickled bodies do not stop others being served, and the gateway closes them all', async () => {
  const user = await newUser('slow-clients');
  const began = Date.now();
  const held: Held[] = [];

  // 1,000 connections that never send a byte.
  for (let i = 0; i < 1000; i += 100) {
    held.push(...(await Promise.all(Array.from({ length: 100 }, () => connect('idle')))));
  }
  // 50 slowloris requests: a request line, then header bytes one every second, never ending.
  for (let i = 0; i < 50; i++) {
    const h = await connect('headers');
    h.socket.write(`POST /api/v1/user HTTP/1.1\r\nHost: ${target().host}\r\n`);
    trickle(h, 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n', 1000);
    held.push(h);
  }
  // 20 requests with whole headers whose JSON and multipart bodies trickle in, a byte a second.
  for (let i = 0; i < 20; i++) {
    const h = await connect('body');
    const upload = i % 2 === 1;
    h.socket.write(
      upload
        ? `POST /api/v1/script HTTP/1.1\r\nHost: ${target().host}\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n`
        : `POST /auth HTTP/1.1\r\nHost: ${target().host}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"email":"`,
    );
    trickle(h, 'a', 1000);
    held.push(h);
  }
  // 50 keep-alive connections that make one request and then stay idle.
  for (let i = 0; i < 50; i++) {
    const h = await connect('keep-alive');
    h.socket.write(`GET /ping HTTP/1.1\r\nHost: ${target().host}\r\n\r\n`);
    held.push(h);
  }

  // A normal client, until the gateway has closed every held connection.
  const deadline = began + requestTimeoutMs + checkIntervalMs + slackMs;
  const outcomes: string[] = [];
  let served = 0;
  let round = 0;
  while (held.some((h) => h.closedAt === undefined) && Date.now() < deadline) {
    round++;
    const results = await Promise.allSettled([
      freshGet('/ping'),
      freshGet('/api/v1/user/me', user.token),
      api('GET', '/api/v1/execution/user?per_page=5', { token: user.token }).then((r) => r.status),
      round % 5 === 0 ? api('POST', '/auth', { body: { email: user.email, password: user.password } }).then((r) => r.status) : Promise.resolve(200),
    ]);
    for (const r of results) {
      if (r.status === 'fulfilled' && r.value === 200) served++;
      else outcomes.push(r.status === 'fulfilled' ? `status ${r.value}` : String(r.reason));
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const open = held.filter((h) => h.closedAt === undefined);
  for (const h of held) {
    if (h.timer) clearInterval(h.timer);
    h.socket.destroy();
  }

  // Every request of the normal client was served, all along.
  expect(outcomes).toEqual([]);
  expect(served).toBeGreaterThan(40);
  // The gateway closed every slow and idle connection itself.
  expect(open.map((h) => h.kind)).toEqual([]);
  const lastClose = (kind: Held['kind']) => Math.max(...held.filter((h) => h.kind === kind).map((h) => h.closedAt! - began));
  expect(lastClose('idle')).toBeLessThan(headersTimeoutMs + checkIntervalMs + slackMs);
  expect(lastClose('headers')).toBeLessThan(headersTimeoutMs + checkIntervalMs + slackMs);
  expect(lastClose('keep-alive')).toBeLessThan(keepAliveTimeoutMs + slackMs);
  expect(lastClose('body')).toBeLessThan(requestTimeoutMs + checkIntervalMs + slackMs);
  // Slow requests are told why (408 with the JSON error body); keep-alive ones got their answer first.
  for (const h of held.filter((x) => x.kind === 'headers' || x.kind === 'body')) {
    expect(h.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(h.received).toContain('"status":408');
  }
  for (const h of held.filter((x) => x.kind === 'keep-alive')) expect(h.received).toMatch(/^HTTP\/1\.1 200 /);
});
