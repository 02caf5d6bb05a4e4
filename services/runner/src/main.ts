import { readFile } from 'node:fs/promises';
import { createLogger, createMetricsRegistry, describeFailure, runnerStopSeconds, Shutdown, startMetricsServer } from '@gef/common';
import { loadConfig } from './config';
import { startCredentialRelay } from './environments/credential-relay';
import { privatiseEnvironmentRecords, sweepUnfinishedEnvironments } from './environments/ensure-environment';
import { environmentSettings } from './environments/settings';
import { removeMemoryCgroups } from './sandbox/memory-cgroups';
import { apiEndpoint, installNetworkPolicy, nameServersOf, packageIndexEndpoints } from './sandbox/network-policy';
import { prepareRunnerDirs } from './sandbox/runner-dirs';
import { createWorker } from './worker';

async function main(): Promise<void> {
  const loaded = loadConfig();
  const logger = createLogger('runner', loaded.LOG_LEVEL);
  // Each part's close is given the time the longest, the worker's drain, may take.
  const shutdown = new Shutdown(logger, runnerStopSeconds(loaded.RUNNER_DRAIN_SECONDS, loaded.SANDBOX_KILL_GRACE_SECONDS) * 1000);
  shutdown.listen();
  // Index and proxy credentials stay in this process: builds get the relay's addresses.
  const relay = await startCredentialRelay(loaded.toolEnv, logger);
  shutdown.add('credential relay', () => relay.close());
  const config = { ...loaded, toolEnv: relay.env };
  const registry = createMetricsRegistry('runner');
  const metrics = await startMetricsServer(registry, config.METRICS_PORT, config.HOST);
  shutdown.add('metrics server', () => new Promise<void>((r) => metrics.server.close(() => r())));
  const sandboxed = config.SANDBOX !== 'off' && typeof process.getuid === 'function' && process.getuid() === 0;
  const dirs = await prepareRunnerDirs({ dataDir: config.GEF_DATA_DIR, ...(config.RUNNER_DATA_DIR ? { configured: config.RUNNER_DATA_DIR } : {}), sandboxed });
  // Half-built environments of a runner killed mid-build: older than any build can take.
  const swept = await sweepUnfinishedEnvironments(environmentSettings(config, dirs.root), (config.PIP_TIMEOUT_SECONDS + 600) * 1000);
  if (swept > 0) logger.info({ swept }, 'unfinished environments removed');
  const privatised = await privatiseEnvironmentRecords(environmentSettings(config, dirs.root));
  if (privatised > 0) logger.info({ privatised }, "older environments' records made the runner's alone");
  if (sandboxed && config.SANDBOX_NETWORK !== 'open') {
    const { scripts, builds } = config.sandboxUids;
    const network = await installNetworkPolicy(
      {
        mode: config.SANDBOX_NETWORK,
        uidFirst: scripts.base,
        uidLast: scripts.base + scripts.count - 1,
        api: await apiEndpoint(config.apiUrl),
        // Port 53 of the machine's name servers only, not of every address.
        dns: nameServersOf(await readFile('/etc/resolv.conf', 'utf8').catch(() => '')),
        builds: {
          uidFirst: builds.base,
          uidLast: builds.base + builds.count - 1,
          indexes: await packageIndexEndpoints(config.toolEnv, (url, why) => logger.warn({ url, err: why }, 'a package index or proxy could not be looked up: builds may not reach it')),
        },
      },
      logger,
      // The API's name may move to another address (a recreated container); the rules follow.
      { resolve: () => apiEndpoint(config.apiUrl), everyMs: 30_000 },
    );
    shutdown.add('sandbox network rules', () => network.remove());
  }
  const { worker, pool, forkServer, memoryGroups, presence, runsCleared } = await createWorker({ address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE }, config, dirs, logger);
  if (memoryGroups) shutdown.add('sandbox memory cgroups', () => removeMemoryCgroups(memoryGroups));
  // The last runs' places are cleared after their outcome is recorded, off its path: before
  // their memory groups go and the process exits.
  shutdown.add('run cleanups', runsCleared);
  if (forkServer) shutdown.add('python fork server', () => forkServer.stop());
  shutdown.add('python interpreter pool', () => pool.stop());
  worker.start();
  shutdown.add('temporal worker', () => {
    const busy = worker.inFlightActivities();
    if (busy) logger.info({ inFlight: busy, drainSeconds: config.RUNNER_DRAIN_SECONDS }, 'taking no more work; the runs and builds in flight may end first');
    return worker.stop();
  });
  // Closed first: the runner stops being online before its worker stops.
  presence.start();
  shutdown.add('runner presence', () => presence.stop());
  // Ready once its worker takes runs; no longer once it begins to stop.
  shutdown.add('readiness', metrics.markReady());
  logger.info({ metricsPort: metrics.port }, 'runner started');
}

main().catch((err: unknown) => {
  process.stderr.write(`runner failed to start: ${describeFailure(err)}\n`);
  process.exit(1);
});
