import type { Logger } from '@gef/common';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { ArchiveLimits } from '../archive/limits';
import type { ArtifactStore } from '../artifacts/artifact-store';
import type { BuildLauncher } from './build-launcher';

/** What the script domain needs. */
export interface ScriptDeps {
  orm: MikroORM;
  store: ArtifactStore;
  limits: ArchiveLimits;
  builds: BuildLauncher;
  /** BUILD_TOKEN_SECRET: signs and checks the build tokens of AppendBuildLog. */
  buildTokenSecret: string;
  logger: Logger;
}
