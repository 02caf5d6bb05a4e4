import { join } from 'node:path';
import type { StackConfig } from './config';
import { serviceEntry, serviceProcessEnv } from './env';
import type { Launched } from './launched';
import type { ServicePart } from './parts';
import { ManagedProcess } from './process';
import { httpGet, httpOk, waitUntil } from './wait';
import { LaunchError } from './errors';

/** Where a service says it has started (migrated, listening, working): /readyz on METRICS_PORT, /ping on the gateway's PORT. */
export function readinessUrl(part: ServicePart, config: StackConfig): string {
  const { ports } = config;
  const port = {
    user: ports.userMetrics,
    script: ports.scriptMetrics,
    execution: ports.executionMetrics,
    runner: ports.runnerMetrics,
    gateway: ports.gateway,
  }[part];
  return `http://127.0.0.1:${port}${part === 'gateway' ? '/ping' : '/readyz'}`;
}

/** `node --import tsx services/<name>/src/main.ts` from the repository root. */
export function launchService(part: ServicePart, config: StackConfig, timeoutMs = 90_000): Launched {
  const proc = ManagedProcess.spawn({
    name: part,
    command: process.execPath,
    args: ['--import', 'tsx', serviceEntry(part, config.repoRoot)],
    cwd: config.repoRoot,
    env: serviceProcessEnv(part, config),
    logFile: join(config.logDir, `${part}.log`),
  });
  const url = readinessUrl(part, config);
  const ready = waitUntil(() => httpOk(url), { what: part, timeoutMs, process: proc });
  return { proc, ready };
}

/** Waits for GET /api-health to answer 200; on timeout names what the gateway reports down. */
export async function waitStackHealthy(config: StackConfig, timeoutMs = 60_000): Promise<void> {
  const url = `http://127.0.0.1:${config.ports.gateway}/api-health`;
  let last: string | undefined;
  try {
    await waitUntil(
      async () => {
        const answer = await httpGet(url, 5000);
        last = answer ? `${answer.status} ${answer.body.slice(0, 300).replace(/\s+/g, ' ')}` : 'no answer';
        return answer?.status === 200;
      },
      { what: 'GET /api-health', timeoutMs, intervalMs: 500 },
    );
  } catch {
    throw new LaunchError(`the gateway's /api-health did not answer 200 within ${timeoutMs / 1000} s (last: ${last ?? 'no answer'}); see the logs in ${config.logDir}`);
  }
}
