/**
 * The gateway answers hot reads from memory (`GET /api/v1/execution/<id>`): a change made
 * anywhere else (here: the runner finishing the run) must show on the very next read, each
 * caller's answer stays their own, and the cache really serves (its hit counter moves).
 */
import { randomBytes } from 'node:crypto';
import { api, apiUrl, login, newUser, superadminCredentials } from './helpers/api';
import { EventStream, gate, publishScript, pythonGate, runScript, waitForExecution, type Gate } from './helpers/executions';

jest.setTimeout(300_000);

const gates: Gate[] = [];
afterAll(() => {
  for (const g of gates) g.open();
});

async function executionHits(): Promise<number> {
  const text = await (await fetch(`${apiUrl()}/metrics`)).text();
  return Number(/gef_gateway_cache_lookups_total\{cache="execution",result="hit"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
}

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
    const before = await executionHits();
    expect((await read(owner.token)).body.data.status).toBe('RUNNING');
    expect((await read(owner.token)).body.data.status).toBe('RUNNING');
    expect(await executionHits()).toBeGreaterThan(before);

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
