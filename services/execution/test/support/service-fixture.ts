import { create } from '@bufbuild/protobuf';
import { ConnectError, createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger, errorInterceptor, NotFound } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { execution, user } from '@gef/protos';
import type { RunExecutionInput, StopRequest } from '@gef/workflows';
import type { Actor } from '../../src/domain/actor';
import type { RunLauncher } from '../../src/domain/run-launcher';
import type { ScriptCatalog, ScriptForRun } from '../../src/domain/script-catalog';
import { entities } from '../../src/entities';
import { ExecutionEvents } from '../../src/events/execution-events';
import type { ExecutionServiceDeps } from '../../src/handlers/execution-service';
import { migrations } from '../../src/migrations';
import { routes } from '../../src/routes';
import { runDispatcher } from '../../src/runs/run-dispatcher';
import { RunnersOnline } from '../../src/domain/runner-presence';

export const tokenSecret = 'a-test-secret-of-enough-length';

/** Scripts the fake script service knows; visibility as the real one (own, public, ADMIN+). */
export class FakeScripts implements ScriptCatalog {
  readonly scripts = new Map<string, ScriptForRun & { public: boolean }>();

  add(s: Partial<ScriptForRun> & { scriptId: string; scriptUserId: string; public?: boolean }): ScriptForRun {
    const full = {
      slug: `script-${s.scriptId.slice(-4)}`,
      version: 1,
      status: 'SUCCESS',
      digest: 'a'.repeat(64),
      size: 100,
      runtime: 'python3',
      environmentHash: 'b'.repeat(64),
      requirements: '',
      cpuLimit: 0,
      memoryLimit: 0,
      timeout: 0,
      public: false,
      ...s,
    };
    this.scripts.set(s.scriptId, full);
    return full;
  }

  async scriptForRun(actor: Actor, idOrSlug: string): Promise<ScriptForRun> {
    const found = [...this.scripts.values()].find((s) => s.scriptId === idOrSlug || s.slug === idOrSlug);
    if (!found || !(found.public || found.scriptUserId === actor.userId || actor.role !== 'USER')) throw new NotFound('Script not found', 'not_found');
    return found;
  }
}

/** Records what the service asks of Temporal. */
export class FakeRuns implements RunLauncher {
  readonly started: RunExecutionInput[] = [];
  readonly stopped: { executionId: string; request: StopRequest }[] = [];
  failStart = false;
  failStop = false;

  async start(run: RunExecutionInput): Promise<void> {
    if (this.failStart) throw new Error('Temporal is down');
    this.started.push(run);
  }

  async stop(executionId: string, request: StopRequest): Promise<void> {
    if (this.failStop) throw new Error('Temporal is down');
    this.stopped.push({ executionId, request });
  }

  readonly woken: string[] = [];

  async wake(executionId: string): Promise<void> {
    this.woken.push(executionId);
  }
}

export interface ServiceFixture {
  orm: MikroORM;
  deps: ExecutionServiceDeps;
  scripts: FakeScripts;
  runs: FakeRuns;
  client: Client<typeof execution.ExecutionService>;
  /** Delivers the outbox's due starts and stops (as the service's dispatcher does); false when one failed. */
  dispatch(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The execution service's RPCs in memory (Connect router transport) over a real database.
 * `launcher`: what steers the runs' workflows (default: `runs`, the fake). `runners`: runs
 * handed to the runners check that one is online, as the service does (off by default: no
 * runner reports here).
 */
export async function serviceFixture(databaseUrl: string, options: { launcher?: RunLauncher; runners?: boolean } = {}): Promise<ServiceFixture> {
  const logger = createLogger('execution-test', 'silent');
  const orm = await openDatabase({ url: databaseUrl, entities, migrations, logger });
  const scripts = new FakeScripts();
  const runs = new FakeRuns();
  const events = new ExecutionEvents(databaseUrl, logger);
  await events.start();
  const deps: ExecutionServiceDeps = {
    orm,
    logger,
    events,
    scripts,
    runs: options.launcher ?? runs,
    tokenSecret,
    settings: { maxConcurrent: 3, defaultTimeoutSeconds: 600, heartbeatTimeoutSeconds: 10, maxAttempts: 3, prepareTimeoutSeconds: 300 },
    ...(options.runners ? { runners: new RunnersOnline(orm) } : {}),
  };
  const dispatcher = runDispatcher({ orm, runs: deps.runs, logger, ...(deps.runners ? { runners: deps.runners } : {}) });
  const transport = createRouterTransport(routes(deps), { router: { interceptors: [errorInterceptor(logger)] } });
  return {
    orm,
    deps,
    scripts,
    runs,
    client: createClient(execution.ExecutionService, transport),
    dispatch: () => dispatcher.drain(),
    async close() {
      await events.stop();
      await orm.close();
    },
  };
}

const roles = { USER: user.Role.USER, ADMIN: user.Role.ADMIN, SUPERADMIN: user.Role.SUPERADMIN } as const;

export const caller = (userId: string, role: keyof typeof roles = 'USER') => create(user.CallerSchema, { userId, role: roles[role] });

/** The lines of a ListExecutionLogs answer, one object each (the answer holds columns). */
export function logRows(reply: execution.ListExecutionLogsResponse) {
  const c = reply.lines ?? create(execution.ExecutionLogColumnsSchema);
  return c.ids.map((id, i) => ({ id, text: c.texts[i]!, level: c.levels[i]!, registerMs: c.registerMs[i]!, attempt: c.attempts[i]!, executionId: c.executionId }));
}

/** The error a call ends with; the test fails when it succeeds. */
export async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the call to fail');
}
