import { procedures } from '@gef/common';
import { OutboxDispatcher } from '@gef/common/outbox';
import { script } from '@gef/protos';
import { runService } from '@gef/common/service';
import { LocalArtifactStore } from './artifacts/local-artifact-store';
import { TemporalBuildLauncher } from './builds/temporal-build-launcher';
import { archiveLimits, artifactsDir, loadConfig } from './config';
import type { ScriptDeps } from './domain/deps';
import { releaseArtifacts } from './domain/artifact-release';
import { resumeBuilds } from './domain/script-builds';
import { entities } from './entities';
import { migrations } from './migrations';
import { BuildDispatchRepository, buildDispatchChannel } from './repositories/build-dispatch-repository';
import { routes } from './routes';
import { createWorker } from './worker';

const config = loadConfig();
/** How often stray upload files, due archive releases and unfinished builds are looked for. */
const housekeepingEveryMs = 5 * 60 * 1000;

void runService({
  name: 'script',
  config,
  entities,
  migrations,
  // A runner's key reaches only what runners call.
  runnerMethods: procedures(script.ScriptService, ['downloadScript', 'appendBuildLog', 'getBuildRequirements']),
  wire: ({ orm, logger, temporal, shutdown }) => {
    const store = new LocalArtifactStore(artifactsDir(config));
    const builds = new TemporalBuildLauncher(temporal.client);
    const deps: ScriptDeps = { orm, store, limits: archiveLimits(config), builds, buildTokenSecret: config.BUILD_TOKEN_SECRET, logger };
    // Starts the buildScript workflows of recorded versions from the outbox, once Temporal answers.
    const dispatcher = new OutboxDispatcher({
      name: 'build dispatcher',
      orm,
      store: new BuildDispatchRepository(),
      start: (ref) => builds.launch(ref),
      logger,
      listen: { databaseUrl: config.DATABASE_URL, channel: buildDispatchChannel },
    });
    shutdown.add('build dispatcher', () => dispatcher.stop());
    return {
      routes: routes(deps),
      worker: createWorker(temporal.settings, deps, logger),
      // Housekeeping after a crash, at start and every few minutes: stray upload files,
      // queued archive removals (those of versions that never committed come due after a
      // grace), builds whose workflow ended without ending them (terminated in Temporal) or
      // never started.
      started: () => {
        dispatcher.start();
        const keepHouse = async (atStart: boolean) => {
          await store.sweepTemporary();
          await releaseArtifacts(deps);
          // Builds in progress are queued too, their start found already running: news at start only.
          const resumed = await resumeBuilds(deps);
          if (resumed > 0) logger[atStart ? 'info' : 'debug']({ resumed }, 'unfinished builds queued again');
        };
        const failed = (err: unknown) => logger.warn({ err }, 'housekeeping failed; it runs again shortly');
        void keepHouse(true).catch(failed);
        const housekeeping = setInterval(() => void keepHouse(false).catch(failed), housekeepingEveryMs);
        housekeeping.unref();
        shutdown.add('housekeeping', () => clearInterval(housekeeping));
      },
    };
  },
});
