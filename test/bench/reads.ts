/**
 * The two authenticated reads alone (BENCH_ONLY=reads): `GET /api/v1/user/me` and
 * `GET /api/v1/execution/<id>` of a finished skeleton run, each beside the bare server
 * answering its JSON, in BENCH_READ_ROUNDS alternating rounds of BENCH_SECONDS each; and a
 * run with about 5 KB of params read as the QGIS plugin reads it (its `User-Agent`, gzip taken),
 * beside the bare server answering the same compressed bytes.
 */
import { builtSkeleton, streamUntilEnd } from './executions';
import { loadLine, readBesideBare, readLines, type ReadComparison } from './load';

export interface ReadBench {
  me: ReadComparison[];
  execution: ReadComparison[];
  /** An execution with about 5 KB of params read as the QGIS plugin does: its `User-Agent`, gzip taken. */
  plugin: ReadComparison[];
}

/** What the QGIS plugin's requests send (Python's `requests` takes gzip). */
const pluginHeaders = { 'User-Agent': 'QGIS/33400 Trends.Earth/2.1.17 python-requests/2.31.0', 'Accept-Encoding': 'gzip, deflate' };

const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
const rounds = Number(process.env['BENCH_READ_ROUNDS'] ?? 3);

export async function benchReads(api: string, token: string): Promise<ReadBench> {
  const scriptId = await builtSkeleton(api, token);
  const run = async (params: object) => {
    const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(params) });
    if (res.status !== 200) throw new Error(`run failed: ${res.status} ${await res.text()}`);
    const id = ((await res.json()) as { data: { id: string } }).data.id;
    await streamUntilEnd(api, token, id);
    return id;
  };
  const id = await run({});
  const big = await run({ area: Array.from({ length: 100 }, (_, i) => [i / 7, -i / 3]), note: 'x'.repeat(1500) });
  const result: ReadBench = { me: [], execution: [], plugin: [] };
  for (let round = 0; round < rounds; round++) {
    result.me.push(await readBesideBare(api, '/api/v1/user/me', token, seconds * 1000));
    result.execution.push(await readBesideBare(api, `/api/v1/execution/${id}`, token, seconds * 1000));
    result.plugin.push(await readBesideBare(api, `/api/v1/execution/${big}`, token, seconds * 1000, 32, pluginHeaders));
  }
  return result;
}

export function readBenchLines(r: ReadBench): string[] {
  return r.me.flatMap((me, i) => [
    `round ${i + 1}`,
    ...readLines('GET /api/v1/user/me', me, loadLine),
    ...readLines('GET /api/v1/execution/<id>', r.execution[i]!, loadLine),
    ...readLines('the same, 5 KB of params, QGIS, gzip', r.plugin[i]!, loadLine),
  ]);
}
