import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import type client from 'prom-client';
import { healthRoutes, type HealthCheck } from './health';
import { errorInterceptor, loggingInterceptor } from './interceptors';
import { rpcRecursionLimit } from './json-depth';
import { metricsInterceptor } from './metrics';
import { serviceKeyInterceptor, type ServiceKeys } from './service-keys';
import { platformVersion } from './version';

export interface RpcServerOptions {
  routes: (router: ConnectRouter) => void;
  logger: Logger;
  registry: client.Registry;
  interceptors?: Interceptor[];
  /** The keys callers must show (`service-keys.ts`); without, every request is taken. */
  keys?: ServiceKeys;
}

/**
 * Builds an unstarted Connect server (h2c: gRPC, gRPC-Web and Connect over cleartext
 * HTTP/2) with the platform's interceptors. Tests start it on port 0.
 */
export function createRpcServer(options: RpcServerOptions): http2.Http2Server {
  const handler = connectNodeAdapter({
    routes: options.routes,
    interceptors: [
      metricsInterceptor(options.registry),
      loggingInterceptor(options.logger),
      errorInterceptor(options.logger),
      ...(options.keys ? [serviceKeyInterceptor(options.keys, options.logger)] : []),
      ...(options.interceptors ?? []),
    ],
    // The gateway enforces request size limits; this is a backstop.
    readMaxBytes: 64 * 1024 * 1024,
    // Requests carrying JSON nested deeper than protobuf-es decodes by default reach the
    // handlers, which refuse them with InvalidArgument instead of a decoding failure.
    binaryOptions: { recursionLimit: rpcRecursionLimit },
    jsonOptions: { recursionLimit: rpcRecursionLimit },
  });
  return http2.createServer(handler);
}

/**
 * A service's RPC server: its own routes plus gef.health.v1.HealthService over `checks`,
 * answering only callers that show one of `keys`.
 */
export function createServiceServer(options: {
  name: string;
  routes: (router: ConnectRouter) => void;
  checks: Record<string, HealthCheck>;
  logger: Logger;
  registry: client.Registry;
  keys: ServiceKeys;
}): http2.Http2Server {
  return createRpcServer({
    routes: (router) => {
      options.routes(router);
      healthRoutes(options.name, platformVersion, options.checks)(router);
    },
    logger: options.logger,
    registry: options.registry,
    keys: options.keys,
  });
}

/** Starts listening and resolves with the bound port. */
export async function listen(server: http2.Http2Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Stops accepting connections and closes open HTTP/2 sessions. */
export async function closeServer(server: http2.Http2Server, graceMs = 5000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
