import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { create } from '@bufbuild/protobuf';
import { healthRoutes, type HealthCheck } from '@gef/common';
import { user } from '@gef/protos';
import type { LimitCheck, LimitDecision, Limiter } from '../src/rate-limit/rate-limiter';
import pino from 'pino';
import { loadConfig } from '../src/config';
import { closeGateway, createGateway, type Gateway, type GatewayDeps } from '../src/server';

/** A stand-in service: gef.health.v1.HealthService over h2c, on port 0. */
export interface FakeService {
  url: string;
  /** The dependency checks it reports; replace entries to change its answers. */
  checks: Record<string, HealthCheck>;
  stop(): Promise<void>;
}

export async function startFakeService(name: string, checks: Record<string, HealthCheck> = { database: async () => {} }): Promise<FakeService> {
  // The same object is read at every call, so tests can change the checks between requests.
  const state: Record<string, HealthCheck> = { ...checks };
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        healthRoutes(name, '0.1.0', state)(router);
        // The one user route that needs neither a token nor a body.
        if (name === 'user') {
          router.service(user.UserService, {
            recoverPassword: () => create(user.RecoverPasswordResponseSchema, { message: 'sent if it exists' }),
          });
        }
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
    checks: state,
    stop: async () => {
      // Close the gateway's open HTTP/2 sessions too, or it would keep reaching us.
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A stand-in for Keycloak's OpenID discovery URL. */
export interface FakeKeycloak {
  url: string;
  stop(): Promise<void>;
}

export async function startFakeKeycloak(realm = 'gef'): Promise<FakeKeycloak> {
  const server = http.createServer((req, res) => {
    if (req.url === `/realms/${realm}/.well-known/openid-configuration`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ issuer: `http://keycloak.internal:8080/realms/${realm}` }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A logger whose JSON lines are kept for assertions. */
export function memoryLogger(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'debug', base: { service: 'gateway' } }, stream);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface RunningGateway extends Gateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Rate-limit counters in memory (the real ones live in PostgreSQL). */
export class MemoryLimiter implements Limiter {
  readonly counts = new Map<string, number>();
  async hit(checks: readonly LimitCheck[]): Promise<LimitDecision[]> {
    return checks.map(({ key, limit }) => {
      const n = (this.counts.get(key) ?? 0) + 1;
      this.counts.set(key, n);
      return n <= limit.max ? { allowed: true } : { allowed: false, retryAfterSeconds: limit.windowSeconds };
    });
  }
  async close(): Promise<void> {}
}

/** Builds the gateway with a test environment and starts it on port 0. */
export async function startGateway(
  env: Record<string, string> = {},
  deps: Partial<GatewayDeps> = {},
): Promise<RunningGateway> {
  const config = loadConfig({ GEF_ENV: 'test', LOG_LEVEL: 'silent', ...env });
  const gateway = createGateway(config, { logger: deps.logger ?? pino({ level: 'silent' }), limiter: new MemoryLimiter(), ...deps });
  await new Promise<void>((resolve) => gateway.server.listen(0, '127.0.0.1', resolve));
  const { port } = gateway.server.address() as AddressInfo;
  return { ...gateway, port, url: `http://127.0.0.1:${port}`, close: () => closeGateway(gateway.server, 1000) };
}

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: () => any;
}

export interface TestRequest {
  method?: string;
  headers?: Record<string, string | number>;
  /** Sent as is; a function writes the body itself (e.g. chunk by chunk). */
  body?: string | Buffer | ((req: http.ClientRequest) => void);
}

/** A raw HTTP/1.1 request (no automatic decompression, any header, any body). */
export function request(base: string | number, path: string, options: TestRequest = {}): Promise<TestResponse> {
  const url = new URL(typeof base === 'number' ? `http://127.0.0.1:${base}` : base);
  return new Promise((resolve, reject) => {
    // The path is sent exactly as given (`//x`, `%ff`…).
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (typeof options.body === 'function') options.body(req);
    else req.end(options.body);
  });
}

/** Writes raw bytes on a TCP socket and returns what came back (for requests Node refuses). */
export function rawRequest(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(raw));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** Everything a full test gateway needs: three fake services and a fake Keycloak. */
export interface TestStack {
  gateway: RunningGateway;
  services: Record<'user' | 'script' | 'execution', FakeService>;
  keycloak: FakeKeycloak;
  stop(): Promise<void>;
}

export async function startStack(env: Record<string, string> = {}, deps: Partial<GatewayDeps> = {}): Promise<TestStack> {
  const [user, script, execution, keycloak] = await Promise.all([
    startFakeService('user', { database: async () => {}, keycloak: async () => {} }),
    startFakeService('script', { database: async () => {}, temporal: async () => {} }),
    startFakeService('execution', { database: async () => {}, temporal: async () => {} }),
    startFakeKeycloak(),
  ]);
  const gateway = await startGateway(
    {
      USER_SERVICE_URL: user.url,
      SCRIPT_SERVICE_URL: script.url,
      EXECUTION_SERVICE_URL: execution.url,
      KEYCLOAK_URL: keycloak.url,
      ...env,
    },
    deps,
  );
  const services = { user, script, execution };
  let stopped = false;
  return {
    gateway,
    services,
    keycloak,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await gateway.close();
      await Promise.all([...Object.values(services).map((s) => s.stop().catch(() => undefined)), keycloak.stop().catch(() => undefined)]);
    },
  };
}
