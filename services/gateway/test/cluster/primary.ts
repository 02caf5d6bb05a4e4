/** A gateway primary over fixture workers (worker.ts), for cluster.test.ts. */
import cluster from 'node:cluster';
import path from 'node:path';
import { createLogger } from '@gef/common';
import { runPrimary } from '../../src/cluster';

cluster.setupPrimary({ exec: path.join(__dirname, 'worker.ts') });
runPrimary({ workers: Number(process.env['WORKERS'] ?? 2), logger: createLogger('gateway-test', (process.env['LOG'] ?? 'silent') as 'silent'), graceMs: Number(process.env['GRACE_MS'] ?? 5000), quickExitMs: 100 });
