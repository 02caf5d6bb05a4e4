import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { cpuMs } from '../cpu';
import { bareActivityQueue } from './workflow';

const workflowQueue = 'gef-bench-bare-workflow';

export interface BareTemporalResult {
  runs: number;
  inFlight: number;
  perSecond: number;
  /** CPU per run (ms) of the Temporal server and of the bench's own workers and client. */
  temporalCpuMsPerRun: number;
  workersCpuMsPerRun: number;
}

/**
 * The ceiling a workflow per run puts on a burst, measured on the stack's own Temporal
 * server: `runs` bare workflows (one activity each, on another task queue, as a run's is
 * on the runners') started with eager start at most `inFlight` at once, each waited for
 * until it completes; workers in this process do nothing but answer. A burst of real runs
 * is compared with this rate from the same run.
 */
export async function benchBareTemporal(address: string, temporalPid: number, runs = 1000, inFlight = 100): Promise<BareTemporalResult> {
  const connection = await NativeConnection.connect({ address });
  const workflows = await Worker.create({ connection, taskQueue: workflowQueue, workflowsPath: require.resolve('./workflow'), maxCachedWorkflows: inFlight * 2 });
  const activities = await Worker.create({ connection, taskQueue: bareActivityQueue, activities: { touch: async (id: string) => id }, maxConcurrentActivityTaskExecutions: inFlight });
  const running = Promise.all([workflows.run(), activities.run()]);
  try {
    // Eager start hands the first task to the worker that shares this connection, as the
    // execution service starts its runs.
    const client = new Client({ connection });
    const tag = `${Date.now()}`;
    const execute = (id: string) => client.workflow.execute('bareRun', { taskQueue: workflowQueue, workflowId: `bench-bare-${tag}-${id}`, args: [id], requestEagerStart: true });
    await Promise.all(Array.from({ length: 20 }, (_, i) => execute(`warm-${i}`)));

    const temporalBefore = cpuMs(temporalPid);
    const ownBefore = process.cpuUsage();
    const began = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(inFlight, runs) }, async () => {
        while (next < runs) await execute(String(next++));
      }),
    );
    const ms = performance.now() - began;
    const own = process.cpuUsage(ownBefore);
    return {
      runs,
      inFlight,
      perSecond: Math.round((runs / ms) * 1000 * 10) / 10,
      temporalCpuMsPerRun: Math.round(((cpuMs(temporalPid) - temporalBefore) / runs) * 10) / 10,
      workersCpuMsPerRun: Math.round(((own.user + own.system) / 1000 / runs) * 10) / 10,
    };
  } finally {
    workflows.shutdown();
    activities.shutdown();
    await running;
    await connection.close();
  }
}
