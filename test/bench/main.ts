/**
 * `npm run bench`: starts the whole stack (through the launcher, in a fresh data dir, on
 * free ports), measures, prints every figure as JSON and as text, and stops it.
 *
 *   start        first start of a fresh data dir (tools cached), then a second start
 *   memory       idle resident memory of each process (with its children)
 *   auth         POST /auth logins per second and p99
 *   read         authenticated GET /api/v1/user/me at 32 concurrent clients, beside a bare
 *                node:http server answering the same JSON in the same run
 *   scripts      upload-to-SUCCESS of the CLI skeleton, cold and warm, and memory while a
 *                50 MB archive streams through (scripts.ts)
 *   executions   run → FINISHED of the CLI skeleton one after another, 1,000 runs submitted
 *                at once by the superadmin until all are terminal (BENCH_BURST_MAX_SECONDS caps
 *                the wait, default 600), and authenticated GET /api/v1/execution/<id> at 32
 *                clients beside a bare server (executions.ts)
 *   lists        a user with a million executions: the first page of 100 of their list and of
 *                the admin's list (execution-lists.ts; BENCH_LIST_ROWS sets the count)
 *   logs         one run writing 100,000 log lines (logger.info in a loop), from its submission
 *                until all are readable in order through GET …/log pages: lines per second
 *                (logs.ts; BENCH_LOG_LINES sets the count)
 *
 *   bare Temporal  after the burst, 1,000 bare workflows (one activity each, workers in the
 *                bench doing nothing) on the stack's Temporal server: the rate a workflow per
 *                run allows on this machine, beside the burst's (bare-temporal/bench.ts)
 *
 * The burst also reports the CPU each part of the stack spent per run (cpu.ts).
 *
 * BENCH_SECONDS sets each load's duration (default 10). BENCH_ONLY=scripts starts the stack
 * once and measures the scripts part alone (BENCH_ONLY=logs: the logs part alone;
 * BENCH_ONLY=burst: the burst and the bare Temporal alone; BENCH_ONLY=lists: the lists alone;
 * BENCH_ONLY=reads: the two authenticated reads beside the bare server, alone; BENCH_ONLY=runs:
 * the sequential runs and GET /execution/<id> beside the bare server, without the burst;
 * BENCH_ONLY=params: reads of runs whose params are half a million tiny values each, with
 * the memory they cost the gateway and the execution service, params.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { databaseUrl, freeStackPorts } from '@gef/deploy';
import { loadLine, readBesideBare, readLines, runLoad } from './load';
import { benchReads, readBenchLines } from './reads';
import { treeRssKib } from './memory';
import { benchBareTemporal, type BareTemporalResult } from './bare-temporal/bench';
import { benchExecutionLists, listBenchLines } from './execution-lists';
import { benchLogs, logBenchLines } from './logs';
import { benchParams, paramsBenchLines } from './params';
import { benchBurst, benchExecutions, burstLines, executionBenchLines, settleLine, type BurstResult } from './executions';
import { benchScripts, scriptBenchLines } from './scripts';
import { waitQuiet } from './cpu';
import { ADMIN, login, startBenchStack as start, waitHealthy } from './stack';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
const listRows = Number(process.env['BENCH_LIST_ROWS'] ?? 1_000_000);
const only = process.env['BENCH_ONLY'];
const results: Record<string, unknown> = {
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() },
};

const burstMaxMs = Number(process.env['BENCH_BURST_MAX_SECONDS'] ?? 600) * 1000;

/** The bare Temporal bench on the stack's Temporal server. */
async function bareTemporalBeside(stack: { pids(): Partial<Record<string, number>> }, ports: { temporal: number }): Promise<BareTemporalResult> {
  const pid = stack.pids()['temporal'];
  if (!pid) throw new Error('Temporal is not running');
  return benchBareTemporal(`127.0.0.1:${ports.temporal}`, pid);
}

/** The burst's rate as a share of the bare Temporal's. */
const burstToBare = (burst: BurstResult, bare: BareTemporalResult): number => Number((burst.perSecond / bare.perSecond).toFixed(3));

/** The bare Temporal's figures, and the burst's rate as a share of its rate. */
function bareTemporalLines(burst: BurstResult, bare: BareTemporalResult): string[] {
  return [
    `bare Temporal (${bare.runs} workflows of one activity, ${bare.inFlight} at once): ${bare.perSecond} workflows/s; CPU per run: Temporal ${bare.temporalCpuMsPerRun} ms, workers ${bare.workersCpuMsPerRun} ms`,
    `burst/bare Temporal ratio: ${burstToBare(burst, bare)}`,
  ];
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'gef-bench-'));
  const ports = await freeStackPorts();
  try {
    let { stack, ms } = await start(dataDir, ports);
    await waitHealthy(stack.urls.gateway);
    if (only === 'scripts') {
      try {
        const scripts = await benchScripts(stack, await login(stack.urls.gateway, ADMIN.email, ADMIN.password));
        process.stdout.write(`${JSON.stringify({ ...results, scripts }, null, 2)}\n\n${scriptBenchLines(scripts).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'burst') {
      try {
        const token = await login(stack.urls.gateway, ADMIN.email, ADMIN.password);
        const burst = await benchBurst(stack.urls.gateway, token, 1000, 100, 120_000, burstMaxMs, () => stack.pids());
        const settleMs = await waitQuiet(() => stack.pids());
        const bareTemporal = await bareTemporalBeside(stack, ports);
        process.stdout.write(`${JSON.stringify({ ...results, burst, settleMs, bareTemporal, burstToBareTemporal: burstToBare(burst, bareTemporal), loadAverage: os.loadavg() }, null, 2)}\n\n${[...burstLines(burst), settleLine(settleMs), ...bareTemporalLines(burst, bareTemporal)].join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'lists') {
      try {
        const lists = await benchExecutionLists(stack.urls.gateway, await login(stack.urls.gateway, ADMIN.email, ADMIN.password), databaseUrl(ports, 'gef_execution'), seconds, listRows);
        process.stdout.write(`${JSON.stringify({ ...results, lists, loadAverage: os.loadavg() }, null, 2)}\n\n${listBenchLines(lists, loadLine).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'reads') {
      try {
        const read = await benchReads(stack.urls.gateway, await login(stack.urls.gateway, ADMIN.email, ADMIN.password));
        process.stdout.write(`${JSON.stringify({ ...results, read, loadAverage: os.loadavg() }, null, 2)}\n\n${readBenchLines(read).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'runs') {
      try {
        const executions = await benchExecutions(stack.urls.gateway, await login(stack.urls.gateway, ADMIN.email, ADMIN.password), seconds, { burstRuns: 0 });
        process.stdout.write(`${JSON.stringify({ ...results, executions, loadAverage: os.loadavg() }, null, 2)}\n\n${executionBenchLines(executions, loadLine).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'params') {
      try {
        const pids = stack.pids();
        if (!pids['gateway'] || !pids['execution']) throw new Error('the gateway or the execution service is not running');
        const params = await benchParams(stack.urls.gateway, await login(stack.urls.gateway, ADMIN.email, ADMIN.password), { gateway: pids['gateway'], execution: pids['execution'] });
        process.stdout.write(`${JSON.stringify({ ...results, params, loadAverage: os.loadavg() }, null, 2)}\n\n${paramsBenchLines(params).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    if (only === 'logs') {
      try {
        const logs = await benchLogs(stack.urls.gateway, await login(stack.urls.gateway, 'admin@gef.local', 'Admin-Dev-Passw0rd!'));
        process.stdout.write(`${JSON.stringify({ ...results, logs, loadAverage: os.loadavg() }, null, 2)}\n\n${logBenchLines(logs).join('\n')}\n`);
      } finally {
        await stack.stop();
      }
      return;
    }
    const first = ms;
    await stack.stop();
    ({ stack, ms } = await start(dataDir, ports));
    await waitHealthy(stack.urls.gateway);
    results['start'] = { firstStartMs: first, secondStartMs: ms, parts: stack.timings };

    const api = stack.urls.gateway;
    const token = await login(api, ADMIN.email, ADMIN.password);
    await new Promise((r) => setTimeout(r, 5000));
    const memory: Record<string, number> = {};
    for (const [part, pid] of Object.entries(stack.pids())) if (pid) memory[part] = Math.round(treeRssKib(pid) / 1024);
    results['idleMemoryMiB'] = memory;

    // Eight users, each logging in again and again (as older runtimes do before every call).
    const password = 'Bench-Passw0rd!42';
    const emails = Array.from({ length: 8 }, (_, i) => `bench-${Date.now()}-${i}@example.org`);
    for (const email of emails) {
      const res = await fetch(`${api}/api/v1/user`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, name: 'Bench', password }) });
      if (res.status !== 200) throw new Error(`cannot register a bench user: ${res.status} ${await res.text()}`);
    }
    const logins = await runLoad({ url: `${api}/auth`, method: 'POST', body: (client) => JSON.stringify({ email: emails[client], password }), concurrency: 8, durationMs: seconds * 1000 });

    const read = await readBesideBare(api, '/api/v1/user/me', token, seconds * 1000);
    results['auth'] = { logins, concurrency: 8 };
    results['read'] = read;

    const scripts = await benchScripts(stack, await login(api, ADMIN.email, ADMIN.password));
    results['scripts'] = scripts;
    // The runs on a quiet stack: the scripts part leaves builds of its 50 MB archives behind
    // (their runner fetches, unpacks and checks them), which took CPU from the first runs.
    const quietBeforeRunsMs = await waitQuiet(() => stack.pids());
    results['quietBeforeRunsMs'] = quietBeforeRunsMs;
    const executions = await benchExecutions(api, await login(api, ADMIN.email, ADMIN.password), seconds, { burstMaxMs, pids: () => stack.pids() });
    results['executions'] = executions;
    const bareTemporal = await bareTemporalBeside(stack, ports);
    results['bareTemporal'] = bareTemporal;
    if (executions.burst) results['burstToBareTemporal'] = burstToBare(executions.burst, bareTemporal);
    const adminToken = await login(api, ADMIN.email, ADMIN.password);
    const lists = await benchExecutionLists(api, adminToken, databaseUrl(ports, 'gef_execution'), seconds, listRows);
    results['lists'] = lists;
    const logs = await benchLogs(api, await login(api, 'admin@gef.local', 'Admin-Dev-Passw0rd!'));
    results['logs'] = logs;

    await stack.stop();
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n\n`);
    const m = results['machine'] as { cpus: number; cpuModel: string; memoryGiB: number };
    process.stdout.write(
      [
        `machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${process.version}`,
        `first start (fresh data, tools cached): ${(first / 1000).toFixed(1)} s; second start: ${(ms / 1000).toFixed(1)} s`,
        `idle memory (MiB): ${Object.entries(memory).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        loadLine('POST /auth (8 clients)', logins),
        ...readLines('GET /api/v1/user/me', read, loadLine),
        ...scriptBenchLines(scripts),
        `the stack was quiet ${(quietBeforeRunsMs / 1000).toFixed(1)} s after the scripts part, before the runs`,
        ...executionBenchLines(executions, loadLine),
        ...(executions.burst ? bareTemporalLines(executions.burst, bareTemporal) : []),
        ...listBenchLines(lists, loadLine),
        ...logBenchLines(logs),
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
