import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { ConfigError, createLogger, createMetricsRegistry, Shutdown } from '@gef/common';
import { RevocationCache } from './auth/revocation-cache';
import { createServiceClients } from './clients';
import { clusterCacheSiblings, clusterMetrics, clusterSlots, joinCluster, runPrimary, workerCount } from './cluster';
import { loadConfig } from './config';
import { ExecutionChanges } from './streams/execution-changes';
import { closeGateway, createGateway } from './server';

/**
 * Starts the gateway: the only file with side effects. With more than one worker
 * (GATEWAY_WORKERS) this process supervises them and each worker runs the rest of main().
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gateway: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger('gateway', config.LOG_LEVEL);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  const workers = workerCount(config.GATEWAY_WORKERS);
  if (cluster.isPrimary && workers > 1) {
    runPrimary({ workers, logger, graceMs: 30_000 });
    return;
  }

  const clients = createServiceClients(config);
  const revocations = new RevocationCache(clients.user, logger);
  const shutdown = new Shutdown(logger);
  shutdown.add('revocations', () => revocations.stop());
  // Follow revocations before serving, so no revoked token slips through at start.
  await revocations.start();
  // Only for caching: requests are served from the service while it is not followed.
  const executionChanges = new ExecutionChanges(clients.execution, logger);
  shutdown.add('execution changes', () => executionChanges.stop());
  await executionChanges.start(1000);
  const registry = createMetricsRegistry('gateway');
  const { server, limiter } = createGateway(config, {
    logger,
    clients,
    registry,
    revocations,
    executionChanges,
    ...(cluster.isWorker ? { metricsText: () => clusterMetrics(), cacheSiblings: clusterCacheSiblings(), sharedSlots: clusterSlots() } : {}),
  });
  shutdown.add('rate limiter', () => limiter.close());
  shutdown.add('http', () => closeGateway(server));
  shutdown.listen();
  if (cluster.isWorker) joinCluster(registry, () => shutdown.begin('the primary'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  logger.info({ host: config.HOST, port, env: config.GEF_ENV, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) }, 'gateway listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
