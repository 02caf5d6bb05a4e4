/**
 * Stand-ins for the script routes' tests: a Keycloak that signs tokens, a script service
 * and a user service whose handlers each test sets, and helpers to build multipart bodies
 * and to send them the way real clients do (chunk by chunk, with backpressure).
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { healthRoutes } from '@gef/common';
import { execution, script, user } from '@gef/protos';
import { startGateway, type FakeService, type RunningGateway } from './support';
import type { GatewayDeps } from '../src/server';

const realm = 'gef';

/** A Keycloak stand-in: the realm's discovery document and signing keys. */
export interface SigningKeycloak {
  url: string;
  /** An access token for a user with a platform role. */
  token(userId: string, role?: 'USER' | 'ADMIN' | 'SUPERADMIN'): Promise<string>;
  stop(): Promise<void>;
}

export async function startSigningKeycloak(): Promise<SigningKeycloak> {
  const pair = await generateKeyPair('RS256');
  const privateKey: KeyLike = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let url = '';
  const server = http.createServer((req, res) => {
    if (req.url === `/realms/${realm}/protocol/openid-connect/certs`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    } else if (req.url === `/realms/${realm}/.well-known/openid-configuration`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ issuer: `${url}/realms/${realm}` }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token: (userId, role = 'USER') =>
      new SignJWT({ realm_access: { roles: ['default-roles-gef', ...(role === 'USER' ? ['USER'] : ['USER', role])] }, sid: `s-${userId}`, azp: 'gef-api', typ: 'Bearer' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject(userId)
        .setIssuer(`${url}/realms/${realm}`)
        .setAudience(['gef-api', 'account'])
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type ScriptImpl = Partial<ServiceImpl<typeof script.ScriptService>>;
type UserImpl = Partial<ServiceImpl<typeof user.UserService>>;
type ExecutionImpl = Partial<ServiceImpl<typeof execution.ExecutionService>>;

/**
 * A service on port 0 (h2c) whose script, user and execution handlers are read at every call, so a
 * test sets only the ones it needs (`handlers.script.createScript = …`).
 */
async function startRpcFake(handlers: { script: ScriptImpl; user: UserImpl; execution: ExecutionImpl }): Promise<FakeService> {
  const delegate = <S extends object>(target: S, names: readonly string[]) =>
    Object.fromEntries(
      names.map((name) => [
        name,
        (...args: unknown[]) => {
          const fn = (target as Record<string, unknown>)[name];
          if (typeof fn !== 'function') throw new Error(`the fake has no ${name}`);
          return (fn as (...a: unknown[]) => unknown)(...args);
        },
      ]),
    );
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        healthRoutes('script', '0.1.0', { database: async () => {} })(router);
        router.service(script.ScriptService, delegate(handlers.script, Object.keys(script.ScriptService.method)) as ScriptImpl);
        router.service(user.UserService, delegate(handlers.user, Object.keys(user.UserService.method)) as UserImpl);
        router.service(
          execution.ExecutionService,
          delegate(handlers.execution, Object.keys(execution.ExecutionService.method)) as ExecutionImpl,
        );
      },
    }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    checks: {},
    stop: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ScriptStack {
  gateway: RunningGateway;
  keycloak: SigningKeycloak;
  /** Set the handlers a test needs; they are read at every call. */
  handlers: { script: ScriptImpl; user: UserImpl; execution: ExecutionImpl };
  stop(): Promise<void>;
}

/** The gateway in front of a fake script, user and execution service, with real token checks. */
export async function startScriptStack(env: Record<string, string> = {}, deps: Partial<GatewayDeps> = {}): Promise<ScriptStack> {
  const handlers: ScriptStack['handlers'] = { script: {}, user: {}, execution: {} };
  const [keycloak, rpc] = await Promise.all([startSigningKeycloak(), startRpcFake(handlers)]);
  const gateway = await startGateway({
    USER_SERVICE_URL: rpc.url,
    SCRIPT_SERVICE_URL: rpc.url,
    EXECUTION_SERVICE_URL: rpc.url,
    KEYCLOAK_URL: keycloak.url,
    ...env,
  }, deps);
  return {
    gateway,
    keycloak,
    handlers,
    stop: async () => {
      await gateway.close();
      await Promise.all([rpc.stop(), keycloak.stop()]);
    },
  };
}

export const ownerId = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
export const otherId = '6f1d4c3e-8a55-4f0a-9c55-2b7e5a4a9d10';
export const scriptId = '0d9b2a41-7c3f-4e29-b1c8-55d1f0e2a7c4';
export const executionId = '3e6f1a52-94d1-4c57-a0c2-7d3b9a1e5f20';

/** An execution of `ownerId`'s, running, as the execution service sends it. */
export function fakeExecution(overrides: MessageInitShape<typeof execution.ExecutionSchema> = {}): execution.Execution {
  return create(execution.ExecutionSchema, {
    id: executionId,
    scriptId,
    userId: ownerId,
    status: execution.ExecutionStatus.RUNNING,
    progress: 33.6,
    paramsJson: '{"a": "1"}',
    startDate: timestampFromDate(new Date('2026-11-28T05:13:18.123Z')),
    updatedAt: timestampFromDate(new Date('2026-11-28T05:13:19Z')),
    scriptVersion: 2,
    attempt: 1,
    workflowId: `execution-${executionId}`,
    ...overrides,
  });
}

/** A script message as the service would answer. */
export function fakeScript(overrides: MessageInitShape<typeof script.ScriptSchema> = {}): script.Script {
  return create(script.ScriptSchema, {
    id: scriptId,
    name: 'My First Script',
    slug: 'my-first-script',
    description: '',
    status: script.ScriptStatus.PENDING,
    public: false,
    userId: ownerId,
    createdAt: timestampFromDate(new Date('2026-11-28T05:13:18.123Z')),
    updatedAt: timestampFromDate(new Date('2026-11-28T05:13:19Z')),
    version: 1,
    runtime: 'python3',
    ...overrides,
  });
}

/** One part of a multipart/form-data body. */
export interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}

export const boundary = '----gef-test-boundary-7MA4YWxkTrZu0gW';

/** The head of a part (boundary line and headers). */
export function partHead(part: Omit<Part, 'data'>, first = false): Buffer {
  const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
  const type = part.contentType ?? (part.filename !== undefined ? 'application/gzip' : undefined);
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`);
}

export const closing = Buffer.from(`\r\n--${boundary}--\r\n`);

/** A whole multipart/form-data body. */
export function multipart(parts: Part[]): Buffer {
  return Buffer.concat([...parts.flatMap((p, i) => [partHead(p, i === 0), Buffer.from(p.data)]), closing]);
}

export const multipartType = `multipart/form-data; boundary=${boundary}`;

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: () => any;
}

/**
 * A request whose body the test writes itself (`write` may wait, stop halfway or destroy
 * the request). A failure to write after the answer arrived (the server closed early) is
 * not an error: the answer is what counts.
 */
export function send(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string | number>; write: (req: http.ClientRequest) => Promise<void> | void },
): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: url.hostname, port: url.port, path, method: options.method ?? 'POST', headers: options.headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
      });
      res.on('error', (err) => (answered ? undefined : reject(err)));
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    Promise.resolve(options.write(req)).catch((err: unknown) => {
      if (!answered) reject(err);
    });
  });
}

/** Writes a chunk, waiting for `drain` when the socket is full; false when it never drains within `stallMs`. */
export function writeOrStall(req: http.ClientRequest, chunk: Buffer, stallMs: number): Promise<boolean> {
  if (req.destroyed) return Promise.resolve(false);
  if (req.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      req.off('drain', onDrain);
      resolve(false);
    }, stallMs);
    const onDrain = () => {
      clearTimeout(timer);
      resolve(true);
    };
    req.once('drain', onDrain);
  });
}

/** Waits until `check` holds (or fails after `timeoutMs`). */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a fake upload RPC saw. */
export interface UploadRecord {
  header?: script.UploadHeader;
  bytes: number;
  chunks: Buffer[];
  /** How the request stream ended: cleanly, or with an error (cancelled, broken). */
  outcome?: 'end' | 'error';
}

/** Reads an upload stream the way the script service does, recording what arrived. */
export async function recordUpload(
  requests: AsyncIterable<script.CreateScriptRequest | script.UpdateScriptRequest>,
  record: UploadRecord,
  options: { keep?: boolean; beforeChunk?: (n: number) => Promise<void>; signal?: AbortSignal } = {},
): Promise<void> {
  let n = 0;
  try {
    for await (const message of requests) {
      if (message.part.case === 'header') record.header = message.part.value;
      else if (message.part.case === 'chunk') {
        await options.beforeChunk?.(n++);
        record.bytes += message.part.value.length;
        if (options.keep !== false) record.chunks.push(Buffer.from(message.part.value));
      }
    }
    // Over HTTP/2 a cancelled call ends the request stream as if it were complete and
    // aborts the call's signal just after; the signal tells the two apart.
    const signal = options.signal;
    if (signal && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
    record.outcome = signal?.aborted ? 'error' : 'end';
  } catch (err) {
    record.outcome = 'error';
    throw err;
  }
}

/**
 * The fake services report calls the gateway cancelled (an upload refused mid-stream, a
 * HEAD download) with console.error; those lines are expected here and kept quiet.
 */
export function quietCancelledCalls(): jest.SpyInstance {
  const original = console.error.bind(console);
  return jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('handler for rpc ')) return;
    original(...args);
  });
}
