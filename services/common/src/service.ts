import type { ConnectRouter } from '@connectrpc/connect';
import type { EntitySchema, MigrationObject } from '@mikro-orm/core';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client, Connection } from '@temporalio/client';
import type client from 'prom-client';
import { databaseTimeouts } from './config';
import { describeFailure, type HealthCheck } from './health';
import { createLogger, type Logger } from './logger';
import { createMetricsRegistry, startMetricsServer } from './metrics';
import { openDatabase, pingDatabase } from './orm';
import { closeServer, createServiceServer, listen } from './rpc-server';
import type { ServiceKeys } from './service-keys';
import { Shutdown } from './shutdown';
import { createTemporalClient, pingTemporal, type SupervisedWorker, type TemporalSettings } from './temporal';

/** The settings every database-owning service has. */
export interface ServiceConfig {
  LOG_LEVEL: string;
  HOST: string;
  PORT: number;
  METRICS_PORT: number;
  DATABASE_URL: string;
  DB_STATEMENT_TIMEOUT_SECONDS: number;
  DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: number;
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  /** The platform's keys (`service-keys.ts`). */
  SERVICE_API_KEY: string;
  /** The runners' keys, for a service runners call. */
  RUNNER_API_KEY?: string;
}

/** What a service gets to wire itself up. */
export interface ServiceContext {
  orm: MikroORM;
  logger: Logger;
  registry: client.Registry;
  temporal: { client: Client; connection: Connection; settings: TemporalSettings };
  shutdown: Shutdown;
}

/** What a service hands back: its RPCs, extra health checks and its worker. */
export interface ServiceParts {
  routes: (router: ConnectRouter) => void;
  checks?: Record<string, HealthCheck>;
  worker?: SupervisedWorker;
  /** Runs once the server listens (background bootstrap work). */
  started?: () => void;
}

export interface ServiceSpec {
  name: string;
  config: ServiceConfig;
  entities: EntitySchema<any, any>[];
  migrations: MigrationObject[];
  /** The RPCs runners call (`<service type name>/<method>`): runners' keys reach only these. */
  runnerMethods?: readonly string[];
  wire: (ctx: ServiceContext) => Promise<ServiceParts> | ServiceParts;
}

/**
 * Starts a database-owning service: metrics side port, database with migrations, Temporal
 * client, the RPC server with health, its worker, and graceful shutdown in reverse order.
 */
export async function runService(spec: ServiceSpec): Promise<void> {
  const { config } = spec;
  const logger = createLogger(spec.name, config.LOG_LEVEL);
  const shutdown = new Shutdown(logger);
  shutdown.listen();
  try {
    const registry = createMetricsRegistry(spec.name);
    const metrics = await startMetricsServer(registry, config.METRICS_PORT, config.HOST);
    shutdown.add('metrics server', () => new Promise<void>((r) => metrics.server.close(() => r())));

    const orm = await openDatabase({
      url: config.DATABASE_URL,
      entities: spec.entities,
      migrations: spec.migrations,
      logger,
      timeouts: databaseTimeouts(config),
    });
    shutdown.add('database', () => orm.close());

    const settings = { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE };
    const temporal = createTemporalClient(settings);
    shutdown.add('temporal client', () => temporal.connection.close());

    const parts = await spec.wire({ orm, logger, registry, temporal: { ...temporal, settings }, shutdown });
    const checks: Record<string, HealthCheck> = {
      database: () => pingDatabase(orm),
      temporal: () => pingTemporal(temporal.connection, settings.namespace),
      ...parts.checks,
    };
    const keys: ServiceKeys = {
      service: config.SERVICE_API_KEY,
      ...(config.RUNNER_API_KEY && spec.runnerMethods ? { runner: { keys: config.RUNNER_API_KEY, methods: spec.runnerMethods } } : {}),
    };
    const server = createServiceServer({ name: spec.name, routes: parts.routes, checks, logger, registry, keys });
    const port = await listen(server, config.PORT, config.HOST);
    shutdown.add('rpc server', () => closeServer(server));

    if (parts.worker) {
      const worker = parts.worker;
      worker.start();
      shutdown.add('temporal worker', () => worker.stop());
    }
    parts.started?.();
    // Ready once migrated, listening and working; added last, run first: dependants stop
    // sending before anything closes.
    shutdown.add('readiness', metrics.markReady());
    logger.info({ port, metricsPort: metrics.port }, `${spec.name} service listening`);
  } catch (err) {
    process.stderr.write(`${spec.name} service failed to start: ${describeFailure(err)}\n`);
    await shutdown.run();
    process.exit(1);
  }
}
