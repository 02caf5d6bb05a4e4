/** Jest globalTeardown of the e2e project: stops the stack globalSetup started. */
import { rmSync } from 'node:fs';
import { takeHarness } from './state';

export default async function globalTeardown(): Promise<void> {
  const harness = takeHarness();
  if (harness === undefined) return;
  const began = Date.now();
  harness.control.close();
  await harness.stack.stop();
  harness.detach();
  rmSync(harness.gatesDir, { recursive: true, force: true });
  if (process.env.GEF_TEST_KEEP_DATA === '1') {
    process.stderr.write(`[stack] stopped in ${Date.now() - began} ms; data kept in ${harness.dataDir}\n`);
  } else {
    rmSync(harness.dataDir, { recursive: true, force: true });
  }
}
