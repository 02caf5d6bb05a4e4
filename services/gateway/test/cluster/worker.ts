/**
 * A fixture worker of cluster.test.ts: serves GET / with its pid and GET /metrics with the
 * cluster's metrics, counts its requests, and shuts down (the gateway's Shutdown) when told
 * to or on SIGTERM. GET /cached/<key> answers its pid and a random value kept in a read
 * cache shared with its siblings; POST /drop/<key> drops the key in every worker. GET
 * /hold/<user> takes one of the user's event-stream slots (at most 3 over all workers) and
 * holds it, streaming, until the client leaves; 429 when the user holds them all.
 * FAIL_AT_START=1: ends with code 3 before it listens.
 */
import http from 'node:http';
import { Counter, Registry } from 'prom-client';
import { createLogger, Shutdown } from '@gef/common';
import { ReadCache } from '../../src/cache/read-cache';
import { clusterCacheSiblings, clusterMetrics, clusterSlots, joinCluster } from '../../src/cluster';
import { StreamSlots } from '../../src/rate-limit/stream-slots';

if (process.env['FAIL_AT_START'] === '1') process.exit(3);

const registry = new Registry();
const requests = new Counter({ name: 'fixture_requests_total', help: 'requests', registers: [registry] });
const cache = new ReadCache<string>({ name: 'fixture', maxEntries: 100, ttlMs: 600_000, live: () => true, registry, siblings: clusterCacheSiblings() });
const streams = new StreamSlots({ user: 3, admin: 3 }, clusterSlots());
const server = http.createServer((req, res) => {
  requests.inc();
  const [, action, key] = (req.url ?? '').split('/');
  if (action === 'cached' && key) {
    cache.read(key, async () => Math.random().toString(36).slice(2)).then((value) => res.end(`${process.pid} ${value}`));
    return;
  }
  if (action === 'hold' && key) {
    streams.take(key, false).then(
      (release) => {
        res.once('close', release);
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write(`${process.pid}\n`);
      },
      () => {
        res.statusCode = 429;
        res.end(String(process.pid));
      },
    );
    return;
  }
  if (action === 'drop' && key && req.method === 'POST') {
    cache.invalidateEverywhere(key).then(() => res.end(String(process.pid)));
    return;
  }
  if (req.url === '/metrics') {
    clusterMetrics().then(
      (text) => res.end(text),
      (err: unknown) => {
        res.statusCode = 503;
        res.end(String(err));
      },
    );
    return;
  }
  res.end(String(process.pid));
});
// Shut down as the gateway's workers are (main.ts): a second signal would end the process
// at once with code 1, which the primary and the test would see.
const shutdown = new Shutdown(createLogger('gateway-test-worker', 'silent'));
shutdown.add('http', () => new Promise<void>((resolve) => server.close(() => resolve())));
shutdown.listen();
joinCluster(registry, () => shutdown.begin('the primary'));
server.listen(Number(process.env['PORT']), '127.0.0.1');
