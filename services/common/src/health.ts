import { create } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';
import { health } from '@gef/protos';
import { within } from './within';

/** A dependency check: resolves when the dependency is up, rejects with why not. */
export type HealthCheck = () => Promise<void>;

const checkTimeoutMs = 1500;

async function runCheck(name: string, check: HealthCheck): Promise<health.DependencyStatus> {
  const started = performance.now();
  try {
    await within(check(), checkTimeoutMs, `no answer within ${checkTimeoutMs} ms`);
    return create(health.DependencyStatusSchema, { name, up: true, latencyMs: performance.now() - started });
  } catch (err) {
    return create(health.DependencyStatusSchema, {
      name,
      up: false,
      detail: describeFailure(err),
      latencyMs: performance.now() - started,
    });
  }
}

/** A one-line reason without addresses, credentials or stack. */
export function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (
    message
      .split('\n')[0]!
      // Connection strings and URLs may carry credentials.
      .replace(/[a-z]+:\/\/\S+/gi, '<address>')
      .slice(0, 200) || 'unavailable'
  );
}

/** Runs every check at once and reports them. */
export async function checkHealth(
  service: string,
  version: string,
  checks: Record<string, HealthCheck>,
): Promise<health.CheckResponse> {
  const dependencies = await Promise.all(Object.entries(checks).map(([name, check]) => runCheck(name, check)));
  return create(health.CheckResponseSchema, {
    service,
    version,
    healthy: dependencies.every((d) => d.up),
    dependencies,
  });
}

/** Registers gef.health.v1.HealthService on a router. */
export function healthRoutes(service: string, version: string, checks: Record<string, HealthCheck>) {
  return (router: ConnectRouter) => {
    router.service(health.HealthService, {
      check: () => checkHealth(service, version, checks),
    });
  };
}
