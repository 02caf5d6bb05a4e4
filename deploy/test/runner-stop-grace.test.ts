/**
 * The time compose and Kubernetes give a stopping runner before they kill it covers what its
 * stop may take with the settings they give it (its drain, the kill grace, the last lines).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { runnerStopDefaults, runnerStopSeconds } from '@gef/common/runner-stop';
import { ROOT } from './support/workspaces';

/** Seconds of a compose duration (`60s`, `1m30s`). */
function composeSeconds(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms)/g)];
  if (parts.map((p) => p[0]).join('') !== value) throw new Error(`not a compose duration: ${value}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * { h: 3600, m: 60, s: 1, ms: 0.001 }[unit as 'h' | 'm' | 's' | 'ms'], 0);
}

/** What a runner's stop may take with these settings (a compose `${V:-d}` counts as d). */
function stopSeconds(env: Record<string, string | undefined>): number {
  const value = (name: string, fallback: number) => {
    const raw = env[name]?.replace(/^\$\{[A-Z_]+:?-([^}]*)\}$/, '$1');
    return raw === undefined ? fallback : Number(raw);
  };
  return runnerStopSeconds(value('RUNNER_DRAIN_SECONDS', runnerStopDefaults.drainSeconds), value('SANDBOX_KILL_GRACE_SECONDS', runnerStopDefaults.killGraceSeconds));
}

describe("a stopping runner's grace", () => {
  test('compose: stop_grace_period covers the stop', () => {
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { stop_grace_period?: string; environment?: Record<string, string> }> };
    const runner = compose.services['runner']!;
    expect(composeSeconds(runner.stop_grace_period ?? '10s')).toBeGreaterThanOrEqual(stopSeconds(runner.environment ?? {}));
  });

  test('Kubernetes: terminationGracePeriodSeconds covers the stop', () => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'k8s', 'runner.yaml'), 'utf8')).map((d) => d.toJSON() as Record<string, any>);
    const deployment = docs.find((d) => d?.['kind'] === 'Deployment' || d?.['kind'] === 'StatefulSet')!;
    const pod = deployment['spec']['template']['spec'];
    const container = (pod['containers'] as { name: string; env?: { name: string; value?: string }[] }[]).find((c) => c.name === 'runner')!;
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
    expect(pod['terminationGracePeriodSeconds'] ?? 30).toBeGreaterThanOrEqual(stopSeconds(env));
  });

  test('reads compose durations', () => {
    expect(composeSeconds('60s')).toBe(60);
    expect(composeSeconds('1m30s')).toBe(90);
    expect(() => composeSeconds('60')).toThrow();
  });
});
