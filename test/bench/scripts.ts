/**
 * Script benchmarks (issue 4), on a running stack:
 *
 *   build   upload-to-SUCCESS of the Trends.Earth CLI skeleton (configuration.json, empty
 *           requirements.txt, src/__init__.py, src/main.py): the first one builds the
 *           environment (cold), the next ones reuse it (warm; target ≤ 1 s, median of
 *           several). Before them one build that fails at once (a pip option in its
 *           requirements) warms the processes up without making any environment, so
 *           "cold" is the environment's cost, not the first request's. Each build is broken down by its build log's timestamps: received →
 *           started (workflow + startScriptBuild) → the runner's first line → SUCCESS, and
 *           SUCCESS → seen by the client.
 *   memory  resident memory of the gateway and the script service (with their children),
 *           sampled every 10 ms while a 50 MB archive streams through; growth = peak −
 *           the value just before the upload (target < 20 MB).
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Stack } from '@gef/deploy';
import { cliMembers, tar } from '../e2e/helpers/archives';
import { peakRss, type RssRun } from './memory';

export interface BuildSample {
  /** POST sent → GET shows SUCCESS. */
  totalMs: number;
  /**
   * From the build log: upload recorded → startScriptBuild → the runner's first line → its
   * check of src/main.py done (the environment's first line) → SUCCESS line → client saw it.
   */
  phasesMs: { toStarted: number; toRunner: number; check: number; runner: number; toSeen: number };
}

export interface ScriptBench {
  /** The warm-up build (ends FAIL by design): the stack's first build after its start. */
  firstBuildMs: number;
  cold: BuildSample;
  warm: BuildSample[];
  warmMedianMs: number;
  memory: { archiveBytes: number; uploadMs: number; status: number; gateway: RssRun; script: RssRun }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
};

export async function upload(api: string, token: string, archive: Buffer, fileName: string): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('file', new Blob([archive], { type: 'application/gzip' }), fileName);
  const res = await fetch(`${api}/api/v1/script`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** One upload of the CLI skeleton, timed until the API says SUCCESS (polled every 20 ms). */
async function timedBuild(api: string, token: string, requirements = ''): Promise<BuildSample> {
  const name = `Bench Skeleton ${randomBytes(4).toString('hex')}`;
  const archive = gzipSync(tar(cliMembers(name, { requirements })));
  const expected = requirements === '' ? 'SUCCESS' : 'FAIL';
  const began = Date.now();
  const res = await upload(api, token, archive, `${name}.tar.gz`);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  const id = res.body.data.id as string;
  const headers = { Authorization: `Bearer ${token}` };
  for (;;) {
    const got = (await (await fetch(`${api}/api/v1/script/${id}`, { headers })).json()) as { data: { status: string } };
    if (got.data.status === expected) break;
    if (got.data.status === 'FAIL' || got.data.status === 'SUCCESS') throw new Error(`the bench script ${id} ended ${got.data.status}`);
    if (Date.now() - began > 300_000) throw new Error(`the bench script ${id} is still ${got.data.status} after 300 s`);
    await sleep(20);
  }
  const seen = Date.now();
  const log = (await (await fetch(`${api}/api/v1/script/${id}/log`, { headers })).json()) as { data: { text: string; register_date: string }[] };
  const find = (pattern: RegExp) => {
    const line = log.data.find((l) => pattern.test(l.text));
    return line ? Date.parse(`${line.register_date}Z`) : undefined;
  };
  const at = (pattern: RegExp) => {
    const found = find(pattern);
    if (found === undefined) throw new Error(`no build log line matching ${pattern} for ${id}`);
    return found;
  };
  const received = at(/received/);
  const started = at(/started for version/);
  const environment = at(/preparing the .* environment on runner/);
  const runner = find(/checking src\/main\.py on runner/) ?? environment;
  const success = at(/SUCCESS|FAIL/);
  return {
    totalMs: seen - began,
    phasesMs: { toStarted: started - received, toRunner: runner - started, check: environment - runner, runner: success - environment, toSeen: seen - success },
  };
}

export async function benchScripts(stack: Stack, token: string, warmSamples = 7): Promise<ScriptBench> {
  const api = stack.urls.gateway;
  const firstBuildMs = (await timedBuild(api, token, '--no-index\n')).totalMs;
  const cold = await timedBuild(api, token);
  const warm: BuildSample[] = [];
  for (let i = 0; i < warmSamples; i++) warm.push(await timedBuild(api, token));

  // A well-formed archive of ~50 MB (random bytes do not compress), just under the upload limit.
  const limit = Number(stack.env.gateway['UPLOAD_LIMIT_BYTES'] ?? 50 * 1024 * 1024);
  const memory: ScriptBench['memory'] = [];
  const pids = stack.pids();
  if (!pids.gateway || !pids.script) throw new Error('the gateway or the script service is not running');
  for (let i = 0; i < 2; i++) {
    const name = `Bench Large ${randomBytes(4).toString('hex')}`;
    const archive = gzipSync(tar([...cliMembers(name), { name: 'src/data.bin', data: randomBytes(limit - 256 * 1024) }]), { level: 1 });
    let status = 0;
    let uploadMs = 0;
    const rss = await peakRss({ gateway: pids.gateway, script: pids.script }, async () => {
      const began = Date.now();
      status = (await upload(api, token, archive, `${name}.tar.gz`)).status;
      uploadMs = Date.now() - began;
    });
    memory.push({ archiveBytes: archive.length, uploadMs, status, ...rss });
    // Let the process settle (its build runs) before the next sample.
    await sleep(3000);
  }
  return { firstBuildMs, cold, warm, warmMedianMs: median(warm.map((w) => w.totalMs)), memory };
}

/** The text lines of the results. */
export function scriptBenchLines(r: ScriptBench): string[] {
  const phases = (s: BuildSample) =>
    `(received→started ${s.phasesMs.toStarted}, →runner ${s.phasesMs.toRunner}, check ${s.phasesMs.check}, environment ${s.phasesMs.runner}, SUCCESS→seen ${s.phasesMs.toSeen} ms)`;
  return [
    `script build, first after the stack started (a requirements error, FAIL at once): ${r.firstBuildMs} ms`,
    `script upload→SUCCESS, cold environment: ${r.cold.totalMs} ms ${phases(r.cold)}`,
    `script upload→SUCCESS, warm environment: median ${r.warmMedianMs} ms of ${r.warm.map((w) => w.totalMs).join(', ')} ms`,
    ...r.warm.map((w, i) => `  warm ${i + 1}: ${w.totalMs} ms ${phases(w)}`),
    ...r.memory.map(
      (m, i) =>
        `50 MB upload ${i + 1} (${(m.archiveBytes / 2 ** 20).toFixed(1)} MiB, ${m.uploadMs} ms, HTTP ${m.status}): gateway ${m.gateway.beforeMiB} → peak ${m.gateway.peakMiB} MiB (+${m.gateway.growthMiB}), script ${m.script.beforeMiB} → peak ${m.script.peakMiB} MiB (+${m.script.growthMiB})`,
    ),
  ];
}
