/**
 * Params made of many tiny JSON values (BENCH_ONLY=params): runs whose params are near the
 * 1 MiB body limit, each a list of about half a million zeros, then reads of them through
 * the gateway. Reports each read's time and size, and the peak resident memory the gateway
 * (its workers included) and the execution service grew by while reading: what a page of
 * such runs costs the hops between the database and the client.
 */
import { builtSkeleton } from './executions';
import { peakRss, type RssRun } from './memory';

export interface ParamsRead {
  what: string;
  requests: number;
  responseBytes: number;
  medianMs: number;
  gateway: RssRun;
  execution: RssRun;
}

export interface ParamsBench {
  runs: number;
  paramsBytes: number;
  valuesPerRun: number;
  reads: ParamsRead[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** `runs` runs of the skeleton with params of `zeros` zeros each, then a list of them and reads of one. */
export async function benchParams(api: string, token: string, pids: { gateway: number; execution: number }, runs = 16, zeros = 510_000): Promise<ParamsBench> {
  const auth = { Authorization: `Bearer ${token}` };
  const scriptId = await builtSkeleton(api, token);
  const body = JSON.stringify({ values: new Array<number>(zeros).fill(0) });
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) {
    const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body });
    if (res.status !== 200) throw new Error(`run refused: ${res.status} ${await res.text()}`);
    ids.push(((await res.json()) as { data: { id: string } }).data.id);
  }
  const reads: ParamsRead[] = [];
  /** Each path read once, in turn: distinct queries and ids keep the gateway's copies out of it. */
  const measure = async (what: string, paths: string[]) => {
    const times: number[] = [];
    let responseBytes = 0;
    const rss = await peakRss(pids, async () => {
      for (const path of paths) {
        const began = performance.now();
        const res = await fetch(`${api}${path}`, { headers: auth });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${what}: ${res.status} ${text.slice(0, 200)}`);
        times.push(performance.now() - began);
        responseBytes = text.length;
      }
    });
    reads.push({ what, requests: paths.length, responseBytes, medianMs: Number(median(times).toFixed(1)), ...rss });
  };
  await measure(
    `GET /api/v1/execution/user?per_page=${runs} (all ${runs} runs)`,
    ['-start_date', 'start_date', 'id'].map((sort) => `/api/v1/execution/user?per_page=${runs}&sort=${sort}`),
  );
  await measure(
    'GET /api/v1/execution/<id> (one run)',
    ids.slice(0, 5).map((id) => `/api/v1/execution/${id}`),
  );
  return { runs, paramsBytes: body.length, valuesPerRun: zeros + 2, reads };
}

export function paramsBenchLines(r: ParamsBench): string[] {
  return [
    `params of ${r.runs} runs, ${(r.paramsBytes / 2 ** 20).toFixed(2)} MiB and ${r.valuesPerRun} JSON values each:`,
    ...r.reads.map(
      (x) =>
        `  ${x.what}: median ${x.medianMs} ms for ${(x.responseBytes / 2 ** 20).toFixed(1)} MiB; peak growth gateway ${x.gateway.growthMiB} MiB (to ${x.gateway.peakMiB}), execution service ${x.execution.growthMiB} MiB (to ${x.execution.peakMiB})`,
    ),
  ];
}
