import { runService } from '@gef/common/service';
import { LocalArtifactStore } from './artifacts/local-artifact-store';
import { TemporalBuildLauncher } from './builds/temporal-build-launcher';
import { archiveLimits, artifactsDir, loadConfig } from './config';
import type { ScriptDeps } from './domain/deps';
import { releaseArtifacts } from './domain/artifact-release';
import { resumeBuilds } from './domain/script-builds';
import { entities } from './entities';
import { migrations } from './migrations';
import { routes } from './routes';
import { createWorker } from './worker';

const config = loadConfig();

void runService({
  name: 'script',
  config,
  entities,
  migrations,
  wire: ({ orm, logger, temporal }) => {
    const store = new LocalArtifactStore(artifactsDir(config));
    const deps: ScriptDeps = { orm, store, limits: archiveLimits(config), builds: new TemporalBuildLauncher(temporal.client), buildTokenSecret: config.BUILD_TOKEN_SECRET, logger };
    return {
      routes: routes(deps),
      worker: createWorker(temporal.settings, deps, logger),
      // Housekeeping after a crash: stray upload files, queued archive removals, builds
      // that never started.
      started: () =>
        void (async () => {
          await store.sweepTemporary();
          await releaseArtifacts(deps);
          const resumed = await resumeBuilds(deps);
          if (resumed > 0) logger.info({ resumed }, 'pending builds resumed');
        })().catch((err: unknown) => logger.warn({ err }, 'start-up housekeeping failed; it runs again at the next start')),
    };
  },
});
