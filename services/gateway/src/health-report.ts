import { Code, ConnectError } from '@connectrpc/connect';
import type { health } from '@gef/protos';
import { describeFailure, formatApiDate } from '@gef/common';
import type { ServiceClients, ServiceName } from './clients';
import { serviceNames } from './clients';
import { isConnectionFailure } from './http-errors';

/** Each check has this long to answer. */
export const healthCheckTimeoutMs = 3000;

export interface DependencyState {
  status: 'up' | 'down';
  latency_ms: number;
  detail?: string;
}

export interface HealthReport {
  status: 'ok' | 'unhealthy';
  detail?: string;
  timestamp: string;
  version: string;
  dependencies: Record<string, DependencyState>;
}

/** What the report needs to reach. */
export interface HealthTargets {
  clients: ServiceClients['health'];
  /** `${KEYCLOAK_URL}/realms/${KEYCLOAK_REALM}/.well-known/openid-configuration` */
  keycloakDiscoveryUrl: string;
  version: string;
}

const networkErrorCode = /\b(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)\b/;
const userAtHost = /[^\s@/:]+:[^\s@/]+@[^\s/]+/g;
const ipv6 = /\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?(?::\d{1,5})?/gi;
const ipv4 = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;
const hostPort = /\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*:\d{2,5}\b/gi;

/**
 * A failure reason fit for an unauthenticated answer: one line, no URL, no address, no
 * credentials. Builds on common's `describeFailure`, which leaves bare `host:port` in.
 * Network errors (whose messages name the host) become `unreachable (CODE)`.
 */
export function safeDetail(text: unknown): string {
  const message = typeof text === 'object' && text !== null && typeof (text as { message?: unknown }).message === 'string' ? (text as { message: string }).message : String(text);
  const line = describeFailure(new Error(message));
  const network = networkErrorCode.exec(line);
  if (network) return `unreachable (${network[1]})`;
  const cleaned = line
    .replace(userAtHost, '<address>')
    .replace(ipv6, (m) => (/[0-9a-f]/i.test(m) ? '<address>' : m))
    .replace(ipv4, '<address>')
    .replace(hostPort, '<address>')
    .trim();
  return cleaned || 'unavailable';
}

/** Why an RPC to a service failed, without its address. */
function rpcFailure(err: unknown): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.DeadlineExceeded) return `no answer within ${healthCheckTimeoutMs} ms`;
    if (isConnectionFailure(err)) return 'unreachable';
    if (err.code === Code.Unimplemented) return 'health check not implemented';
    return safeDetail(`${Code[err.code] ?? 'error'}: ${err.rawMessage}`);
  }
  return safeDetail(err);
}

/** Why the Keycloak check failed (fetch errors may come from another realm: no instanceof). */
function httpFailure(err: unknown): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown; cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${healthCheckTimeoutMs} ms`;
  const cause = e.cause as { code?: unknown } | undefined;
  const code = typeof cause === 'object' && cause !== null ? cause.code : undefined;
  if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) return `unreachable (${code})`;
  return safeDetail(typeof e.message === 'string' ? e.message : err);
}

const round = (ms: number) => Math.round(ms * 10) / 10;

async function timed<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T; ms: number } | { ok: false; error: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await fn();
    return { ok: true, value, ms: round(performance.now() - started) };
  } catch (error) {
    return { ok: false, error, ms: round(performance.now() - started) };
  }
}

/** Keycloak answers its realm's OpenID discovery document. */
export async function checkKeycloak(discoveryUrl: string): Promise<void> {
  const res = await fetch(discoveryUrl, {
    signal: AbortSignal.timeout(healthCheckTimeoutMs),
    headers: { accept: 'application/json' },
    redirect: 'error',
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`HTTP ${res.status}`);
  }
  const body = (await res.json()) as { issuer?: unknown };
  if (typeof body.issuer !== 'string') throw new Error('not an OpenID discovery document');
}

/**
 * Asks every service (and Keycloak) at once and merges the answers: one entry per service,
 * one for Keycloak, and each dependency the services report both merged by name (down when
 * any service finds it down) and per service (`database_user`).
 */
export async function buildHealthReport(targets: HealthTargets): Promise<HealthReport> {
  const [keycloak, ...services] = await Promise.all([
    timed(() => checkKeycloak(targets.keycloakDiscoveryUrl)),
    ...serviceNames.map((name) =>
      timed(() => targets.clients[name].check({}, { timeoutMs: healthCheckTimeoutMs })).then((r) => ({ name, ...r })),
    ),
  ]);

  const dependencies: Record<string, DependencyState> = {};
  const reported = new Map<string, { service: ServiceName; status: health.DependencyStatus }[]>();

  for (const result of services) {
    if (result.ok) {
      dependencies[`${result.name}_service`] = { status: 'up', latency_ms: result.ms };
      for (const dep of result.value.dependencies) {
        const name = dep.name.toLowerCase().replace(/[^a-z0-9]+/g, '_');
        if (!name) continue;
        const list = reported.get(name) ?? [];
        list.push({ service: result.name, status: dep });
        reported.set(name, list);
      }
    } else {
      dependencies[`${result.name}_service`] = { status: 'down', latency_ms: result.ms, detail: rpcFailure(result.error) };
    }
  }

  // Keycloak: the gateway's own check, merged with what services report about it.
  const keycloakReports = reported.get('keycloak') ?? [];
  reported.delete('keycloak');
  const downElsewhere = keycloakReports.filter((r) => !r.status.up).map((r) => `${r.service}: ${safeDetail(r.status.detail || 'down')}`);
  dependencies['keycloak'] = keycloak.ok
    ? downElsewhere.length === 0
      ? { status: 'up', latency_ms: keycloak.ms }
      : { status: 'down', latency_ms: keycloak.ms, detail: downElsewhere.join('; ') }
    : { status: 'down', latency_ms: keycloak.ms, detail: httpFailure(keycloak.error) };
  const perService: Record<string, DependencyState> = {};
  for (const r of keycloakReports) perService[`keycloak_${r.service}`] = stateOf(r.status);

  for (const [name, reports] of [...reported.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const down = reports.filter((r) => !r.status.up);
    dependencies[name] =
      down.length === 0
        ? { status: 'up', latency_ms: Math.max(...reports.map((r) => round(r.status.latencyMs))) }
        : {
            status: 'down',
            latency_ms: Math.max(...reports.map((r) => round(r.status.latencyMs))),
            detail: down.map((r) => `${r.service}: ${safeDetail(r.status.detail || 'down')}`).join('; '),
          };
    for (const r of reports) perService[`${name}_${r.service}`] = stateOf(r.status);
  }
  Object.assign(dependencies, perService);

  // What is down, by its top-level name (per-service entries repeat a merged one).
  const downNames = Object.entries(dependencies)
    .filter(([name, state]) => state.status === 'down' && !(name in perService))
    .map(([name]) => name);
  return {
    status: downNames.length === 0 ? 'ok' : 'unhealthy',
    ...(downNames.length > 0 ? { detail: `down: ${downNames.join(', ')}` } : {}),
    timestamp: formatApiDate(new Date())!,
    version: targets.version,
    dependencies,
  };
}

function stateOf(status: health.DependencyStatus): DependencyState {
  return status.up
    ? { status: 'up', latency_ms: round(status.latencyMs) }
    : { status: 'down', latency_ms: round(status.latencyMs), detail: safeDetail(status.detail || 'down') };
}
