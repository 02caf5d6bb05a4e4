import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Interceptor } from '@connectrpc/connect';
import { ConnectError } from '@connectrpc/connect';
import client from 'prom-client';
import { within } from './within';

export type MetricsRegistry = client.Registry;

/** The process's Prometheus registry, with Node's default metrics. */
export function createMetricsRegistry(service: string): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The registry's counter of that name, created on first use: several holders (one per
 * cache, a launcher and its replacement) count into one series set.
 */
export function sharedCounter<L extends string>(registry: client.Registry, name: string, help: string, labelNames: readonly L[]): client.Counter<L> {
  const existing = registry.getSingleMetric(name) as client.Counter<L> | undefined;
  return existing ?? new client.Counter({ name, help, labelNames, registers: [registry] });
}

/**
 * A gauge read when the metrics are scraped (`sample` answers its value then). A sample that
 * fails or takes over a second (its database away) leaves the last value: the other metrics
 * are still served.
 */
export function sampledGauge(registry: client.Registry, name: string, help: string, sample: () => Promise<number>): client.Gauge {
  return new client.Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      try {
        this.set(await within(sample(), 1000, `${name}: no sample within 1 s`));
      } catch {
        // Kept as it was.
      }
    },
  });
}

/** Counts and times every RPC a server handles. */
export function metricsInterceptor(registry: client.Registry): Interceptor {
  const duration = new client.Histogram({
    name: 'gef_rpc_server_duration_seconds',
    help: 'RPC handling time by procedure and code',
    labelNames: ['procedure', 'code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (next) => async (req) => {
    const end = duration.startTimer({ procedure: `${req.service.typeName}/${req.method.name}` });
    try {
      const res = await next(req);
      end({ code: 'ok' });
      return res;
    } catch (err) {
      end({ code: err instanceof ConnectError ? String(err.code) : 'unknown' });
      throw err;
    }
  };
}

/**
 * The HTTP/1.1 side port of a process: `GET /metrics` (Prometheus text format), `GET /healthz`
 * (liveness: 200 while the process runs, migrations included) and `GET /readyz` (readiness:
 * 503 until the process calls `markReady` — migrated, listening, working — and again once it
 * calls what that returns, as it begins to stop: no traffic or dependant is let in early).
 */
export async function startMetricsServer(
  registry: client.Registry,
  port: number,
  host: string,
): Promise<{ server: http.Server; port: number; markReady: () => () => void }> {
  let ready = false;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end('metrics unavailable\n');
        });
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    if (req.method === 'GET' && path === '/readyz') {
      res.writeHead(ready ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(ready ? '{"status":"ready"}' : '{"status":"starting or stopping"}');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"status":404,"detail":"Not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const markReady = () => {
    ready = true;
    return () => {
      ready = false;
    };
  };
  return { server, port: (server.address() as AddressInfo).port, markReady };
}
