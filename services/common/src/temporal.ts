import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { describeError } from './logger';

export interface TemporalSettings {
  address: string;
  namespace: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let runtimeInstalled = false;

/** Installs the SDK's runtime once: its log lines through the process's pino logger, no signal handlers of its own. */
export function installTemporalLogging(logger: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const child = logger.child({ component: 'temporal' });
  Runtime.install({
    // Workers stop through the process's own shutdown and in its order (a runner reports
    // that it is stopping before it drains), not on the SDK's own signal handlers.
    shutdownSignals: [],
    logger: new DefaultLogger('INFO', (entry) => child[levels[entry.level]](entry.meta ?? {}, entry.message)),
  });
}

/**
 * A Temporal client whose connection is made on first use, so a service starts (and
 * reports Temporal as down) while the Temporal server is unavailable.
 */
export function createTemporalClient(settings: TemporalSettings): { client: Client; connection: Connection } {
  const connection = Connection.lazy({ address: settings.address });
  return { client: new Client({ connection, namespace: settings.namespace }), connection };
}

/** Health check: the frontend answers a system-info call. */
export async function pingTemporal(connection: Connection, namespace: string): Promise<void> {
  await connection.workflowService.describeNamespace({ namespace });
}

/**
 * Runs a worker for the life of the process. When Temporal is down at start or the worker
 * fails, it reconnects with backoff; `stop()` shuts it down gracefully.
 */
export class SupervisedWorker {
  private worker: Worker | undefined;
  private connection: NativeConnection | undefined;
  private sharedClient: Client | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly settings: TemporalSettings,
    private readonly options: Omit<WorkerOptions, 'connection' | 'namespace'>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    installTemporalLogging(this.logger);
    this.loop ??= this.run();
  }

  get running(): boolean {
    return this.worker?.getState() === 'RUNNING';
  }

  /** Activities the worker is running now; undefined while it is not running. */
  inFlightActivities(): number | undefined {
    return this.running ? this.worker!.getStatus().numInFlightActivities : undefined;
  }

  /**
   * A client on this worker's own connection while the worker runs: workflows it starts
   * with `requestEagerStart` get their first task handed straight to this worker in the
   * start's answer (no round trip through a task queue). Undefined while the worker is not
   * running; use the service's ordinary client then.
   */
  eagerClient(): Client | undefined {
    if (!this.running || !this.connection) return undefined;
    this.sharedClient ??= new Client({ connection: this.connection, namespace: this.settings.namespace });
    return this.sharedClient;
  }

  private async run(): Promise<void> {
    let delay = 500;
    while (!this.stopped) {
      try {
        this.connection = await NativeConnection.connect({ address: this.settings.address });
        if (this.stopped) break;
        this.worker = await Worker.create({
          ...this.options,
          connection: this.connection,
          namespace: this.settings.namespace,
        });
        // Stopped while it was being made (bundling workflows takes seconds): never run.
        if (this.stopped) break;
        this.logger.info({ taskQueue: this.options.taskQueue }, 'temporal worker started');
        delay = 500;
        await this.worker.run();
        if (this.stopped) break;
        this.logger.warn({ taskQueue: this.options.taskQueue }, 'temporal worker stopped; restarting');
      } catch (err) {
        if (this.stopped) break;
        this.logger.warn({ err: describeError(err), taskQueue: this.options.taskQueue, retryInMs: delay }, 'temporal worker unavailable');
      } finally {
        this.sharedClient = undefined;
        await this.connection?.close().catch(() => undefined);
        this.connection = undefined;
        this.worker = undefined;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.worker && this.worker.getState() === 'RUNNING') this.worker.shutdown();
    await this.loop;
  }
}
