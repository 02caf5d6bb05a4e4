/**
 * The gateway answers hot reads from memory (`GET /api/v1/execution/<id>`, as values and as
 * whole answers given before its app): a change made anywhere else (here: the runner
 * finishing the run) must show on the very next read, each caller's answer stays their own,
 * and the cache really serves (its hit counter moves).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { api, counterValue, login, newUser, readUntilCacheHit, superadminCredentials } from './helpers/api';
import { EventStream, gate, publishScript, pythonGate, runScript, waitForExecution, type Gate } from './helpers/executions';

jest.setTimeout(300_000);

const gates: Gate[] = [];
afterAll(() => {
  for (const g of gates) g.open();
});

describe('the execution read cache', () => {
  it('serves repeated reads from memory and never serves a change late', async () => {
    const owner = await newUser('cache-owner');
    const other = await newUser('cache-other');
    const admin = superadminCredentials();
    const adminToken = (await login(admin.email, admin.password)).access_token;
    const script = await publishScript(
      owner.token,
      `Cache Probe ${randomBytes(4).toString('hex')}`,
      `${pythonGate}
def run(params, logger):
    logger.info("waiting")
    wait_gate(params)
    return "done"
`,
    );
    const g = gate();
    gates.push(g);
    const created = await runScript(owner.token, script.slug, { body: { gate: g.path } });
    await waitForExecution(owner.token, created.id, ['RUNNING']);

    const read = (token: string, id = created.id) => api('GET', `/api/v1/execution/${id}`, { token });
    const reads = await readUntilCacheHit('execution', () => read(owner.token));
    expect(reads.after).toBeGreaterThan(reads.before);
    for (const answer of reads.answers) expect(answer.body.data.status).toBe('RUNNING');
    // And as whole answers, given before the app (the reads below meet them too).
    const whole = await readUntilCacheHit('answer', () => read(owner.token));
    expect(whole.after).toBeGreaterThan(whole.before);
    for (const answer of whole.answers) expect(answer.body.data.status).toBe('RUNNING');

    // Another user's answer is theirs (404), however warm the owner's copy is.
    expect((await read(other.token)).status).toBe(404);
    expect((await read(other.token)).status).toBe(404);
    // The admin's copy has the workflow id; the owner's never does.
    expect((await read(adminToken)).body.data.workflow_id).toBe(`execution-${created.id}`);
    expect((await read(owner.token)).body.data.workflow_id).toBeUndefined();
    // Upper-case ids read the same execution.
    expect((await read(owner.token, created.id.toUpperCase())).body.data.id).toBe(created.id);

    // The runner finishes the run: the gateway did not make that change, yet the next read shows it.
    const events = await EventStream.open(`/api/v1/execution/${created.id}/events`, { Authorization: `Bearer ${owner.token}` });
    g.open();
    const seen = await events.closed();
    expect(seen.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data).status)).toContain('FINISHED');
    const after = await read(owner.token);
    expect(after.body.data).toMatchObject({ status: 'FINISHED', progress: 100, results: 'done' });
    expect((await read(adminToken)).body.data.status).toBe('FINISHED');
  });
});

describe('the execution list cache', () => {
  it('serves repeated lists from memory, and shows a new run and every change of it on the next list', async () => {
    const owner = await newUser('list-owner');
    const other = await newUser('list-other');
    const admin = superadminCredentials();
    const adminToken = (await login(admin.email, admin.password)).access_token;
    const script = await publishScript(
      owner.token,
      `List Probe ${randomBytes(4).toString('hex')}`,
      `${pythonGate}
def run(params, logger):
    wait_gate(params)
    return "listed"
`,
    );
    const own = (token = owner.token, query = 'page=1&per_page=10') => api('GET', `/api/v1/execution/user?${query}`, { token });
    const byAdmin = (query: string) => api('GET', `/api/v1/execution?${query}`, { token: adminToken });

    // Warm: an empty list, then the same list from memory.
    expect((await own()).body).toMatchObject({ data: [], total: 0 });
    const lists = await readUntilCacheHit('execution_list', () => own());
    expect(lists.after).toBeGreaterThan(lists.before);
    for (const answer of lists.answers) expect(answer.body.total).toBe(0);
    expect((await byAdmin(`user_id=${owner.id}`)).body.total).toBe(0);
    const firstAll = (await byAdmin('page=1&per_page=1')).body.data[0]?.id;

    // A new run shows on the very next list, the owner's, the admin's of that owner and of everyone.
    const g = gate();
    gates.push(g);
    const created = await runScript(owner.token, script.slug, { body: { gate: g.path } });
    const listed = await own();
    expect(listed.body.total).toBe(1);
    expect(listed.body.data[0].id).toBe(created.id);
    expect(listed.body.data[0].workflow_id).toBeUndefined();
    expect((await byAdmin(`user_id=${owner.id}`)).body.data.map((e: { id: string }) => e.id)).toEqual([created.id]);
    const all = (await byAdmin('page=1&per_page=1')).body.data[0];
    expect(all.id).not.toBe(firstAll);
    expect(all).toMatchObject({ id: created.id, workflow_id: `execution-${created.id}` });
    // Another caller's list is theirs.
    expect((await own(other.token)).body.total).toBe(0);

    // The runner changes the run (not through this gateway's routes): each change shows on the next list.
    await waitForExecution(owner.token, created.id, ['RUNNING']);
    expect((await own()).body.data[0].status).toBe('RUNNING');
    const events = await EventStream.open(`/api/v1/execution/${created.id}/events`, { Authorization: `Bearer ${owner.token}` });
    g.open();
    await events.closed();
    expect((await own()).body.data[0]).toMatchObject({ id: created.id, status: 'FINISHED', progress: 100, results: 'listed' });
    expect((await byAdmin(`user_id=${owner.id}`)).body.data[0].status).toBe('FINISHED');

    // Embeds are added to the cached page: the script, and the owner.
    const embedded = (await own(owner.token, 'page=1&per_page=10&include=script,user')).body.data[0];
    expect(embedded.script).toMatchObject({ slug: script.slug });
    expect(embedded.user).toMatchObject({ id: owner.id });
    const again = (await own(owner.token, 'page=1&per_page=10&include=script,user')).body.data[0];
    expect(again).toEqual(embedded);
  });
});

/** A gateway's count of keys its workers dropped because another of its workers changed them. */
const siblingDrops = (cache: string) => counterValue('gef_gateway_cache_sibling_drops_total', `cache="${cache}"`);

describe('the gateway workers', () => {
  it('show a change made through any of them on the very next read from every one', async () => {
    const owner = await newUser('sibling-owner');
    const script = await publishScript(owner.token, `Sibling Probe ${randomBytes(4).toString('hex')}`, 'def run(params, logger):\n    return "ok"\n');
    // Each read on a new connection: the cluster hands each to the next worker.
    const fresh = (path: string) => api('GET', path, { token: owner.token, headers: { Connection: 'close' } });
    const reads = (path: string) => Promise.all(Array.from({ length: 4 }, () => fresh(path)));
    const several = availableParallelism() > 1;

    for (let round = 1; round <= 3; round++) {
      // Every worker holds the profile and the list.
      for (const r of await reads('/api/v1/user/me')) expect(r.status).toBe(200);
      for (const r of await reads('/api/v1/execution/user?page=1&per_page=10')) expect(r.body.total).toBe(round - 1);

      const profileDrops = await siblingDrops('profile');
      const name = `Sibling Round ${round}`;
      expect((await api('PATCH', '/api/v1/user/me', { token: owner.token, body: { name } })).status).toBe(200);
      for (const r of await reads('/api/v1/user/me')) expect(r.body.data.name).toBe(name);
      if (several) expect(await siblingDrops('profile')).toBeGreaterThan(profileDrops);

      const listDrops = await siblingDrops('execution_list');
      const created = await runScript(owner.token, script.slug);
      for (const r of await reads('/api/v1/execution/user?page=1&per_page=10')) {
        expect(r.body.total).toBe(round);
        expect(r.body.data[0].id).toBe(created.id);
      }
      if (several) expect(await siblingDrops('execution_list')).toBeGreaterThan(listDrops);
    }
  });
});
