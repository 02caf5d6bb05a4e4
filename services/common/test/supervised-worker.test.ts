import { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { installTemporalLogging, SupervisedWorker } from '../src/temporal';
import { testTemporalCli } from '@gef/deploy';


jest.setTimeout(60_000);

// Against a real Temporal dev server: workers stop only through stop(), in the process's
// own shutdown order (the SDK's signal handlers are not installed).
describe('SupervisedWorker', () => {
  let env: TestWorkflowEnvironment;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    // The process's runtime, as a service installs it, before the test server's use of it.
    installTemporalLogging(logger);
    env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: testTemporalCli() } } });
  });
  afterAll(() => env?.teardown());

  const settings = () => ({ address: env.connection.options.address, namespace: env.namespace ?? 'default' });
  const options = (taskQueue: string) => ({ taskQueue, activities: { noop: async () => 'done' } });

  it('runs until stopped', async () => {
    const worker = new SupervisedWorker(settings(), options('supervised-runs'), logger);
    worker.start();
    for (let i = 0; i < 1200 && !worker.running; i++) await new Promise((r) => setTimeout(r, 25));
    expect(worker.running).toBe(true);
    expect(worker.inFlightActivities()).toBe(0);
    await worker.stop();
    expect(worker.running).toBe(false);
  });

  it('never runs a worker it was stopped while making', async () => {
    const worker = new SupervisedWorker(settings(), options('supervised-stopped-early'), logger);
    worker.start();
    // Stopped while it connects: the stop resolves, and no worker polls after it.
    const stopped = await Promise.race([worker.stop().then(() => 'stopped'), new Promise((r) => setTimeout(r, 10_000, 'still running'))]);
    expect(stopped).toBe('stopped');
    expect(worker.running).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(worker.running).toBe(false);
  });
});
