import http from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type client from 'prom-client';
import { createMetricsRegistry, databaseTimeouts, platformVersion, type Logger } from '@gef/common';
import type { execution, user } from '@gef/protos';
import { Authenticator } from './auth/authenticator';
import type { RevocationCache } from './auth/revocation-cache';
import { AnswerCache } from './cache/answer-cache';
import { ReadCache, type CacheSiblings } from './cache/read-cache';
import type { SharedSlots } from './cluster';
import { createServiceClients, type ServiceClients } from './clients';
import type { ExecutionChanges } from './streams/execution-changes';
import type { GatewayConfig } from './config';
import { compressResponses } from './compression';
import { cors } from './cors';
import { bodyForStatus, sendError } from './http-errors';
import { RequestTiming } from './http-metrics';
import { buildOpenApiDocument } from './openapi/document';
import type { OpenApiDocument } from './openapi/types';
import { counterLifetimeSeconds, type Limits } from './rate-limit/limits';
import { RateLimiter, type Limiter } from './rate-limit/rate-limiter';
import { requestContext } from './request-context';
import { resources as defaultResources } from './routes';
import { mountFallbacks, mountRoutes } from './routes/mount';
import { allPagesKey, ownerPagesKey, type RenderedExecutionPage, type Resource, type RouteContext, type RouteDef } from './routes/types';
import { securityHeaders } from './security-headers';

/** How long a client may take, so slow clients cannot hold the server. */
export interface ServerTimeouts {
  /** Receiving the request headers. */
  headersTimeoutMs: number;
  /** Receiving the whole request, body included (uploads are the slowest). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection; above a load balancer's idle timeout (often 60 s). */
  keepAliveTimeoutMs: number;
  /** How often Node checks the two request timeouts above. */
  checkIntervalMs: number;
}

export const defaultTimeouts: ServerTimeouts = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 65_000,
  checkIntervalMs: 5_000,
};

export interface GatewayDeps {
  logger: Logger;
  /** Defaults to a fresh `createMetricsRegistry('gateway')`. */
  registry?: client.Registry;
  /** Defaults to clients of the services at the configured URLs. */
  clients?: ServiceClients;
  /** Defaults to every resource of `routes/index.ts`. */
  resources?: readonly Resource[];
  timeouts?: Partial<ServerTimeouts>;
  /** Token revocations followed from the user service (started by `main.ts`). */
  revocations?: RevocationCache;
  /** Execution changes followed from the execution service (started by `main.ts`). */
  executionChanges?: ExecutionChanges;
  /** Defaults to counters in the gateway's database (DATABASE_URL). */
  limiter?: Limiter;
  /** The other processes of this gateway (a cluster worker's siblings), whose read caches drop what this one changes. */
  cacheSiblings?: CacheSiblings;
  /** What GET /metrics answers; defaults to `registry`'s metrics (a worker of a cluster asks its primary). */
  metricsText?: () => Promise<string>;
  /** Slots counted over every process of this gateway (a cluster worker's, through its primary). */
  sharedSlots?: SharedSlots;
}

export interface Gateway {
  app: Express;
  /** Not listening yet: `main.ts` (or a test) starts it. */
  server: http.Server;
  registry: client.Registry;
  openapi: OpenApiDocument;
  /** The route table the app was built from. */
  routes: readonly RouteDef[];
  limiter: Limiter;
}

/** How often the rate-limit table is swept of counters that can no longer count. */
const rateLimitSweepMs = 5 * 60_000;

/** Builds the gateway: an Express 5 app and an unstarted HTTP server around it. */
export function createGateway(config: GatewayConfig, deps: GatewayDeps): Gateway {
  const { logger } = deps;
  const registry = deps.registry ?? createMetricsRegistry('gateway');
  const clients = deps.clients ?? createServiceClients(config);
  const resources = deps.resources ?? defaultResources;
  const openapi = buildOpenApiDocument(
    resources.map((r) => r.openapi),
    { version: platformVersion },
  );
  const auth = Authenticator.fromSettings(
    { url: config.KEYCLOAK_URL, realm: config.KEYCLOAK_REALM, clientId: config.KEYCLOAK_CLIENT_ID, issuer: config.KEYCLOAK_ISSUER },
    deps.revocations,
  );
  const limits = limitsOf(config);
  // Past windows' counters are swept every few minutes (by one gateway process at a time) until `limiter.close()`.
  const limiter = deps.limiter ?? RateLimiter.fromUrl(config.DATABASE_URL, logger, databaseTimeouts(config)).startSweeping({ everyMs: rateLimitSweepMs, olderThanSeconds: counterLifetimeSeconds(limits) });
  const profiles = profileCache(config, registry, deps.revocations, deps.cacheSiblings);
  const executions = executionCache(config, registry, deps.executionChanges, deps.cacheSiblings);
  const executionPages = executionPageCache(config, registry, deps.executionChanges, deps.cacheSiblings);
  const metricsText = deps.metricsText ?? (() => registry.metrics());
  const timing = new RequestTiming(registry, logger);
  const answers = new AnswerCache({ maxEntries: 10_000, maxBytes: answersMaxBytes, trusts: (principal) => auth.trusts(principal), timing, registry });
  const ctx: RouteContext = {
    config,
    logger,
    registry,
    metricsText,
    clients,
    openapi,
    auth,
    limiter,
    limits,
    profiles,
    executions,
    executionPages,
    answers,
    ...(deps.sharedSlots ? { sharedSlots: deps.sharedSlots } : {}),
  };
  const routes = resources.flatMap((r) => r.routes(ctx));

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxy(config.TRUST_PROXY));
  // Whatever happens, Express's own final handler never renders a stack trace.
  app.set('env', 'production');
  app.set('etag', 'weak');

  app.use(requestContext(logger));
  app.use(timing.middleware());
  app.use(securityHeaders());
  app.use(cors(config.CORS_ORIGINS));
  app.use(compressResponses());
  mountRoutes(app.router, routes, { bodyLimit: config.BODY_LIMIT_BYTES });
  mountFallbacks(app.router, routes);
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    sendError(req, res, err);
  });

  const timeouts = { ...defaultTimeouts, ...deps.timeouts };
  // Hot reads answered from memory skip the app; everything else goes through it.
  const server = http.createServer({ connectionsCheckingInterval: timeouts.checkIntervalMs }, (req, res) => {
    if (!answers.serve(req, res)) app(req, res);
  });
  server.headersTimeout = timeouts.headersTimeoutMs;
  server.requestTimeout = timeouts.requestTimeoutMs;
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, logger));

  return { app, server, registry, openapi, routes, limiter };
}

/**
 * Profiles cached while the user service's change stream is followed: each change, and
 * each revocation of the user, drops the copy; a lost stream clears everything.
 */
function profileCache(config: GatewayConfig, registry: client.Registry, revocations: RevocationCache | undefined, siblings: CacheSiblings | undefined): ReadCache<user.User> {
  const cache = new ReadCache<user.User>({
    name: 'profile',
    maxEntries: 100_000,
    ttlMs: revocations ? config.PROFILE_CACHE_TTL_SECONDS * 1000 : 0,
    live: () => revocations?.isConnected ?? false,
    registry,
    ...(siblings ? { siblings } : {}),
  });
  revocations?.onUserChange((userId) => (userId === undefined ? cache.clear() : cache.invalidate(userId)));
  return cache;
}

/**
 * Most characters of executions' params and results held: an execution's may be a MiB each
 * and callers' variants are kept apart, so a count of entries alone let a few thousand reads
 * of big runs hold gigabytes.
 */
const executionsMaxChars = 32 * 1024 * 1024;

/** Executions as callers see them, cached while the execution service's changes are followed. */
function executionCache(config: GatewayConfig, registry: client.Registry, changes: ExecutionChanges | undefined, siblings: CacheSiblings | undefined): ReadCache<execution.Execution> {
  const cache = new ReadCache<execution.Execution>({
    name: 'execution',
    maxEntries: 100_000,
    maxWeight: executionsMaxChars,
    weigh: (e) => e.paramsJson.length + (e.resultsJson?.length ?? 0),
    ttlMs: changes ? config.EXECUTION_CACHE_TTL_SECONDS * 1000 : 0,
    live: () => changes?.isConnected ?? false,
    registry,
    ...(siblings ? { siblings } : {}),
  });
  changes?.onChange((id) => (id === undefined ? cache.clear() : cache.invalidate(id)));
  return cache;
}

/** Most bytes of whole answers held (`AnswerCache`), beside the values they were made from. */
const answersMaxBytes = 32 * 1024 * 1024;

/** Most characters of execution list pages held (about twice as many bytes). */
const executionPagesMaxChars = 32 * 1024 * 1024;

/**
 * Pages of execution lists, cached while the execution service's changes are followed:
 * an execution created, changed or deleted drops its owner's pages and the pages of every
 * user's list (`all`); a lost stream clears everything.
 */
function executionPageCache(
  config: GatewayConfig,
  registry: client.Registry,
  changes: ExecutionChanges | undefined,
  siblings: CacheSiblings | undefined,
): ReadCache<RenderedExecutionPage> {
  const cache = new ReadCache<RenderedExecutionPage>({
    name: 'execution_list',
    maxEntries: 10_000,
    maxWeight: executionPagesMaxChars,
    weigh: (page) => page.items.reduce((n, item) => n + item.length, 0),
    ttlMs: changes ? config.EXECUTION_CACHE_TTL_SECONDS * 1000 : 0,
    live: () => changes?.isConnected ?? false,
    registry,
    ...(siblings ? { siblings } : {}),
  });
  changes?.onOwnerChange((userId) => {
    if (userId === undefined) return cache.clear();
    cache.invalidate(ownerPagesKey(userId));
    cache.invalidate(allPagesKey);
  });
  return cache;
}

/** The configured rate limits by name. */
function limitsOf(config: GatewayConfig): Limits {
  return {
    login_client: config.RATE_LIMIT_LOGIN_PER_CLIENT,
    login_account: config.RATE_LIMIT_LOGIN_PER_ACCOUNT,
    refresh_client: config.RATE_LIMIT_REFRESH_PER_CLIENT,
    refresh_session: config.RATE_LIMIT_REFRESH_PER_SESSION,
    register_client: config.RATE_LIMIT_REGISTER_PER_CLIENT,
    register_account: config.RATE_LIMIT_REGISTER_PER_ACCOUNT,
    recover_client: config.RATE_LIMIT_RECOVER_PER_CLIENT,
    recover_account: config.RATE_LIMIT_RECOVER_PER_ACCOUNT,
    run_account: config.RATE_LIMIT_RUN_PER_ACCOUNT,
    run_client: config.RATE_LIMIT_RUN_PER_CLIENT,
    upload_account: config.RATE_LIMIT_UPLOAD_PER_ACCOUNT,
    upload_client: config.RATE_LIMIT_UPLOAD_PER_CLIENT,
  };
}

/** TRUST_PROXY as Express wants it. */
function trustProxy(value: string): boolean | number | string[] {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false' || v === '') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

/**
 * Requests Node refuses before Express sees them (malformed HTTP, headers too large,
 * timeouts) get the JSON error body too, then the connection closes. So does a request
 * whose body is still arriving when `requestTimeout` ends it (a trickled body), unless its
 * answer has begun already: then the connection is only cut.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex, logger: Logger): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
        ? 408
        : err.code === 'HPE_URI_TOO_LONG'
          ? 414
          : 400;
  logger.debug({ code: err.code, status }, 'refused malformed request');
  const body = JSON.stringify(bodyForStatus(status));
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Bad Request'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** Stops accepting, lets requests in progress finish (up to `graceMs`), then closes. */
export async function closeGateway(server: http.Server, graceMs = 5000): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
