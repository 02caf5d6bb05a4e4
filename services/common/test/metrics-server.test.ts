/**
 * A process's side port: liveness answers while it runs; readiness only once it says it has
 * started (migrated, listening, working) and not once it begins to stop.
 */
import { createMetricsRegistry, startMetricsServer } from '../src/metrics';

it('answers /healthz always, and /readyz 200 only while the process says it is ready', async () => {
  const { server, port, markReady } = await startMetricsServer(createMetricsRegistry('test'), 0, '127.0.0.1');
  const status = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  try {
    expect(await status('/healthz')).toBe(200);
    expect(await status('/readyz')).toBe(503);
    const stopping = markReady();
    expect(await status('/readyz')).toBe(200);
    expect(await status('/metrics')).toBe(200);
    stopping();
    expect(await status('/readyz')).toBe(503);
    expect(await status('/healthz')).toBe(200);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
