/**
 * Execution lists at scale (issue 6), on a running stack: one user with a million
 * executions (written straight into the execution service's database, spread over time
 * as real runs would be), then `GET /api/v1/execution/user?page=1&per_page=100` as that
 * user and `GET /api/v1/execution?page=1&per_page=100` as the superadmin, one client and
 * eight at once; and the user's list without pagination (its first 1,000).
 */
import pg from 'pg';
import { runLoad, type LoadResult } from './load';

export interface ListBench {
  rows: number;
  seedMs: number;
  own: { c1: LoadResult; c8: LoadResult; total: number };
  /**
   * The own list at one client while one of the user's executions changes every few
   * milliseconds: each change drops the gateway's cached pages, so most reads go to the
   * execution service and the database.
   */
  ownChanging: { c1: LoadResult; changes: number };
  all: { c1: LoadResult; c8: LoadResult; total: number };
  /**
   * The own list asked without `page` and `per_page` (as the QGIS plugin asks for its jobs):
   * its first 1,000 executions in one answer, one client, while the user's executions
   * change (so the answers are read, not cached).
   */
  ownWhole: { c1: LoadResult; rows: number; changes: number };
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export async function benchExecutionLists(api: string, adminToken: string, executionDbUrl: string, seconds: number, rows = 1_000_000): Promise<ListBench> {
  const email = `bench-lists-${Date.now()}@example.org`;
  const password = 'Bench-Passw0rd!42';
  const created = await json(await fetch(`${api}/api/v1/user`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, name: 'Lists', password }) }));
  const userId = created.data.id as string;
  const token = (await json(await fetch(`${api}/auth`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password }) }))).access_token as string;

  const began = Date.now();
  const db = new pg.Client({ connectionString: executionDbUrl });
  await db.connect();
  try {
    // In slices, so no one statement holds everything; one script per thousand runs.
    const slice = 100_000;
    for (let from = 0; from < rows; from += slice) {
      await db.query(
        `insert into execution (id, script_id, user_id, status, progress, params, results, start_date, end_date, updated_at, script_version, attempt)
         select gen_random_uuid(), md5('bench-script-' || (i / 1000))::uuid, $1, 'FINISHED', 100, '{"area": "bench"}'::jsonb, '{"ok": true}'::jsonb,
                now() - make_interval(secs => i * 30), now() - make_interval(secs => i * 30 - 5), now() - make_interval(secs => i * 30 - 5), 1, 1
         from generate_series($2::int, $3::int) i`,
        [userId, from + 1, Math.min(rows, from + slice)],
      );
    }
    await db.query('vacuum analyze execution');
  } finally {
    await db.end();
  }
  const seedMs = Date.now() - began;

  const measure = async (path: string, bearer: string) => {
    const headers = { Authorization: `Bearer ${bearer}` };
    const total = Number((await json(await fetch(`${api}${path}`, { headers }))).total);
    const c1 = await runLoad({ url: `${api}${path}`, headers, concurrency: 1, durationMs: seconds * 1000 });
    const c8 = await runLoad({ url: `${api}${path}`, headers, concurrency: 8, durationMs: seconds * 1000 });
    return { c1, c8, total };
  };
  const own = await measure('/api/v1/execution/user?page=1&per_page=100', token);
  const all = await measure('/api/v1/execution?page=1&per_page=100', adminToken);
  const ownChanging = await whileChanging(executionDbUrl, userId, () =>
    runLoad({ url: `${api}/api/v1/execution/user?page=1&per_page=100`, headers: { Authorization: `Bearer ${token}` }, concurrency: 1, durationMs: seconds * 1000 }),
  );
  const wholeRows = ((await json(await fetch(`${api}/api/v1/execution/user`, { headers: { Authorization: `Bearer ${token}` } }))).data as unknown[]).length;
  const ownWhole = await whileChanging(executionDbUrl, userId, () =>
    runLoad({ url: `${api}/api/v1/execution/user`, headers: { Authorization: `Bearer ${token}` }, concurrency: 1, durationMs: seconds * 1000 }),
  );
  return {
    rows,
    seedMs,
    own,
    all,
    ownChanging: { c1: ownChanging.result, changes: ownChanging.changes },
    ownWhole: { c1: ownWhole.result, rows: wholeRows, changes: ownWhole.changes },
  };
}

/** Runs `work` while the user's newest execution is updated every 5 ms (each update announced to the gateways). */
async function whileChanging<T>(executionDbUrl: string, userId: string, work: () => Promise<T>): Promise<{ result: T; changes: number }> {
  const db = new pg.Client({ connectionString: executionDbUrl });
  await db.connect();
  let changes = 0;
  let stop = false;
  const changing = (async () => {
    const newest = (await db.query('select id from execution where user_id = $1 order by start_date desc, id desc limit 1', [userId])).rows[0].id as string;
    while (!stop) {
      await db.query('update execution set updated_at = clock_timestamp() where id = $1', [newest]);
      changes++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const result = await work();
    return { result, changes };
  } finally {
    stop = true;
    await changing;
    await db.end();
  }
}

export function listBenchLines(r: ListBench, line: (name: string, l: LoadResult) => string): string[] {
  return [
    `lists with ${r.rows} executions of one user (seeded in ${(r.seedMs / 1000).toFixed(1)} s):`,
    line(`/execution/user 100 (1), total ${r.own.total}`, r.own.c1),
    line('/execution/user 100 (8)', r.own.c8),
    line(`/execution 100 admin (1), total ${r.all.total}`, r.all.c1),
    line('/execution 100 admin (8)', r.all.c8),
    line(`/execution/user 100 (1) while the user's executions change (${r.ownChanging.changes} changes)`, r.ownChanging.c1),
    line(`/execution/user unpaginated, ${r.ownWhole.rows} rows (1), changing (${r.ownWhole.changes} changes)`, r.ownWhole.c1),
  ];
}
