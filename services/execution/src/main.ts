import { keyToSend, sampledGauge, serviceClient } from '@gef/common';
import { runService } from '@gef/common/service';
import { script, user } from '@gef/protos';
import { loadConfig } from './config';
import type { ExecutionServiceDeps } from './handlers/execution-service';
import { entities } from './entities';
import { ExecutionEvents } from './events/execution-events';
import { migrations } from './migrations';
import { RunnersOnline, runnerOnlineSeconds } from './domain/runner-presence';
import { routes } from './routes';
import { runnerMethods } from './server';
import { EndedWorkflows } from './runs/ended-workflows';
import { runDispatcher } from './runs/run-dispatcher';
import { TemporalRunLauncher } from './runs/temporal-run-launcher';
import { ScriptServiceCatalog } from './scripts/script-service-catalog';
import { UserServiceNotices } from './users/user-service-notices';
import { createWorker } from './worker';

const config = loadConfig();
/** How often runs whose workflow has ended without ending them are looked for. */
const endedWorkflowsEveryMs = 5 * 60_000;

void runService({
  name: 'execution',
  config,
  entities,
  migrations,
  runnerMethods,
  wire: ({ orm, logger, temporal, shutdown, registry }) => {
    const events = new ExecutionEvents(config.DATABASE_URL, logger);
    shutdown.add('execution events', () => events.stop());
    let worker: ReturnType<typeof createWorker> | undefined;
    const runs = new TemporalRunLauncher(temporal.client, () => worker?.eagerClient(), registry);
    // Starts the runExecution workflows of accepted runs from the outbox, and tells those of
    // cancelled or ended runs to stop, once Temporal answers.
    // Runners report themselves; a run handed to them while none is online says so.
    const runners = new RunnersOnline(orm);
    sampledGauge(registry, 'gef_runners_online', `Runner processes that reported in the last ${runnerOnlineSeconds} s`, async () => (await runners.count()).runners);
    const dispatcher = runDispatcher({ orm, runs, logger, databaseUrl: config.DATABASE_URL, runners });
    shutdown.add('run dispatcher', () => dispatcher.stop());
    // Runs whose workflow was ended in Temporal without ending them (terminated, reset):
    // ended, and their slots given back, at start and every few minutes.
    const endedWorkflows = new EndedWorkflows({ orm, runs, workflows: runs, logger, maxConcurrent: config.MAX_CONCURRENT_EXECUTIONS, registry });
    shutdown.add('ended run workflows check', () => endedWorkflows.stop());
    const deps: ExecutionServiceDeps = {
      orm,
      logger,
      events,
      scripts: new ScriptServiceCatalog(serviceClient(script.ScriptService, config.SCRIPT_SERVICE_URL, { serviceKey: keyToSend(config.SERVICE_API_KEY) })),
      owners: new UserServiceNotices(serviceClient(user.UserService, config.USER_SERVICE_URL, { serviceKey: keyToSend(config.SERVICE_API_KEY) })),
      runs,
      runners,
      tokenSecret: config.EXECUTION_TOKEN_SECRET,
      settings: {
        maxConcurrent: config.MAX_CONCURRENT_EXECUTIONS,
        maxWaiting: config.MAX_WAITING_EXECUTIONS,
        defaultTimeoutSeconds: config.EXECUTION_DEFAULT_TIMEOUT_SECONDS,
        heartbeatTimeoutSeconds: config.RUNNER_HEARTBEAT_TIMEOUT_SECONDS,
        maxAttempts: config.EXECUTION_MAX_ATTEMPTS,
        prepareTimeoutSeconds: config.RUNNER_PREPARE_TIMEOUT_SECONDS,
        apiLog: { maxLines: config.API_LOG_MAX_LINES, maxBytes: config.API_LOG_MAX_BYTES },
      },
    };
    return {
      routes: routes(deps),
      checks: {
        // Execution streams and the gateways' caches follow the changes announced on it; a
        // connection that died silently counts as down once its liveness probe fails.
        events: async () => {
          if (!events.listening) throw new Error('not listening for execution changes');
        },
      },
      worker: (worker = createWorker(temporal.settings, deps, logger)),
      started: () => {
        void events.start();
        dispatcher.start();
        endedWorkflows.start(endedWorkflowsEveryMs);
      },
    };
  },
});
