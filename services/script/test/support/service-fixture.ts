import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger, errorInterceptor } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { OutboxDispatcher } from '@gef/common/outbox';
import { script, user } from '@gef/protos';
import { LocalArtifactStore } from '../../src/artifacts/local-artifact-store';
import type { BuildLauncher, BuildRef } from '../../src/domain/build-launcher';
import type { ScriptDeps } from '../../src/domain/deps';
import { entities } from '../../src/entities';
import { migrations } from '../../src/migrations';
import { BuildDispatchRepository } from '../../src/repositories/build-dispatch-repository';
import { routes } from '../../src/routes';

export const buildTokenSecret = 'a-build-secret-of-enough-length';

/** Records the builds the service asks Temporal for. */
export class FakeBuilds implements BuildLauncher {
  readonly launched: BuildRef[] = [];
  failLaunch = false;

  async launch(ref: BuildRef): Promise<void> {
    if (this.failLaunch) throw new Error('Temporal is down');
    this.launched.push(ref);
  }
}

export interface ServiceFixture {
  orm: MikroORM;
  deps: ScriptDeps;
  builds: FakeBuilds;
  /** The artifact store's root directory. */
  artifacts: string;
  client: Client<typeof script.ScriptService>;
  /** Starts the outbox's due builds (as the service's dispatcher does); false when a start failed. */
  dispatch(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The script service's RPCs in memory (Connect router transport) over a real database, with
 * the local artifact store in a temporary directory and Temporal faked.
 */
export async function serviceFixture(databaseUrl: string): Promise<ServiceFixture> {
  const logger = createLogger('script-test', 'silent');
  const orm = await openDatabase({ url: databaseUrl, entities, migrations, logger });
  const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-artifacts-'));
  const builds = new FakeBuilds();
  const deps: ScriptDeps = {
    orm,
    store: new LocalArtifactStore(artifacts),
    limits: {
      maxCompressedBytes: 5 * 1024 * 1024,
      maxInflatedBytes: 50 * 1024 * 1024,
      maxMembers: 1000,
      timeoutMs: 30_000,
      maxConfigurationBytes: 1024 * 1024,
      maxRequirementsBytes: 64 * 1024,
    },
    builds,
    buildTokenSecret,
    logger,
  };
  const transport = createRouterTransport(routes(deps), { router: { interceptors: [errorInterceptor(logger)] } });
  return {
    orm,
    deps,
    builds,
    artifacts,
    client: createClient(script.ScriptService, transport),
    dispatch: () => new OutboxDispatcher({ name: 'build dispatcher', orm, store: new BuildDispatchRepository(), start: (ref) => builds.launch(ref), logger }).drain(),
    async close() {
      await orm.close();
      fs.rmSync(artifacts, { recursive: true, force: true });
    },
  };
}

const roles = { USER: user.Role.USER, ADMIN: user.Role.ADMIN, SUPERADMIN: user.Role.SUPERADMIN } as const;

export const caller = (userId: string, role: keyof typeof roles = 'USER') => create(user.CallerSchema, { userId, role: roles[role] });

type UploadHeader = { caller: user.Caller; fileName: string; idOrSlug?: string };

/** A CreateScript upload as the gateway streams it: the header, then the archive in chunks. */
export async function* createMessages(header: UploadHeader, archive: Buffer, chunkSize = 16 * 1024): AsyncGenerator<script.CreateScriptRequest> {
  const schema = script.CreateScriptRequestSchema;
  yield create(schema, { part: { case: 'header', value: { caller: header.caller, fileName: header.fileName, idOrSlug: header.idOrSlug ?? '' } } });
  for (let i = 0; i < archive.length; i += chunkSize) yield create(schema, { part: { case: 'chunk', value: archive.subarray(i, i + chunkSize) } });
}

/** An UpdateScript upload (a new version), likewise. */
export async function* updateMessages(header: UploadHeader, archive: Buffer, chunkSize = 16 * 1024): AsyncGenerator<script.UpdateScriptRequest> {
  const schema = script.UpdateScriptRequestSchema;
  yield create(schema, { part: { case: 'header', value: { caller: header.caller, fileName: header.fileName, idOrSlug: header.idOrSlug ?? '' } } });
  for (let i = 0; i < archive.length; i += chunkSize) yield create(schema, { part: { case: 'chunk', value: archive.subarray(i, i + chunkSize) } });
}
