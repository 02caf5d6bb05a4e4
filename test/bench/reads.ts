/**
 * The two authenticated reads alone (BENCH_ONLY=reads): `GET /api/v1/user/me` and
 * `GET /api/v1/execution/<id>` of a finished skeleton run, each beside the bare server
 * answering its JSON, in BENCH_READ_ROUNDS alternating rounds of BENCH_SECONDS each.
 */
import { builtSkeleton, streamUntilEnd } from './executions';
import { loadLine, readBesideBare, readLines, type ReadComparison } from './load';

export interface ReadBench {
  me: ReadComparison[];
  execution: ReadComparison[];
}

const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
const rounds = Number(process.env['BENCH_READ_ROUNDS'] ?? 3);

export async function benchReads(api: string, token: string): Promise<ReadBench> {
  const scriptId = await builtSkeleton(api, token);
  const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' });
  if (res.status !== 200) throw new Error(`run failed: ${res.status} ${await res.text()}`);
  const id = ((await res.json()) as { data: { id: string } }).data.id;
  await streamUntilEnd(api, token, id);
  const result: ReadBench = { me: [], execution: [] };
  for (let round = 0; round < rounds; round++) {
    result.me.push(await readBesideBare(api, '/api/v1/user/me', token, seconds * 1000));
    result.execution.push(await readBesideBare(api, `/api/v1/execution/${id}`, token, seconds * 1000));
  }
  return result;
}

export function readBenchLines(r: ReadBench): string[] {
  return r.me.flatMap((me, i) => [`round ${i + 1}`, ...readLines('GET /api/v1/user/me', me, loadLine), ...readLines('GET /api/v1/execution/<id>', r.execution[i]!, loadLine)]);
}
