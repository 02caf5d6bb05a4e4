/**
 * CONTRACT §4: deleting a user removes the user from Keycloak, their scripts and their own
 * executions with all logs, reliably (the deleteUser saga over the user, script and
 * execution services); executions other users made of those scripts are kept. And §5's
 * `include=executions` on scripts, which shows each caller only what they may see.
 */
import { randomBytes } from 'node:crypto';
import { api, login, newUser, strongPassword, superadminCredentials } from './helpers/api';
import { scriptProcesses } from './helpers/runners';
import { gate, publishScript, pythonGate, runScript, waitForExecution, waitForLog, type Gate } from './helpers/executions';

jest.setTimeout(300_000);

type Account = { id: string; email: string; token: string };

const unique = () => randomBytes(4).toString('hex');

/** Polls until `check` holds (the saga runs in the background). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Processes on this machine running for an execution (helpers/runners.ts scriptProcesses). */
const processesOf = scriptProcesses;

const gatedMain = `${pythonGate}
def run(params, logger):
    logger.info("waiting at the gate")
    wait_gate(params)
    return "through"
`;

let superToken: string;
let victim: Account;
let bystander: Account;
let victimScript: { id: string; slug: string };
let victimGated: { id: string; slug: string };
let bystanderScript: { id: string; slug: string };
let g: Gate;

beforeAll(async () => {
  const superadmin = superadminCredentials();
  superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
  [victim, bystander] = await Promise.all([newUser('delete-victim'), newUser('delete-bystander')]);
  [victimScript, victimGated, bystanderScript] = await Promise.all([
    publishScript(victim.token, `Delete Victim ${unique()}`, 'def run(params, logger):\n    logger.info("victim ran")\n    return "OK"\n'),
    publishScript(victim.token, `Delete Victim Gated ${unique()}`, gatedMain),
    publishScript(bystander.token, `Delete Bystander ${unique()}`, 'def run(params, logger):\n    return "OK"\n'),
  ]);
  for (const [s, token] of [
    [victimScript, victim.token],
    [bystanderScript, bystander.token],
  ] as const) {
    expect((await api('POST', `/api/v1/script/${s.id}/publish`, { token })).status).toBe(200);
  }
  g = gate();
});

afterAll(() => {
  g?.open();
});

describe('include=executions on scripts', () => {
  it('embeds the runs of the script each caller may see: their own, or every run for an ADMIN', async () => {
    const own = await runScript(victim.token, victimScript.slug);
    const theirs = await runScript(bystander.token, victimScript.slug);
    await Promise.all([waitForExecution(victim.token, own.id), waitForExecution(bystander.token, theirs.id)]);

    const asOwner = await api('GET', `/api/v1/script/${victimScript.id}?include=executions`, { token: victim.token });
    expect(asOwner.status).toBe(200);
    expect(asOwner.body.data.executions.map((e: any) => e.id)).toEqual([own.id]);
    expect(asOwner.body.data.executions[0]).toMatchObject({ script_id: victimScript.id, user_id: victim.id, status: 'FINISHED' });
    expect(asOwner.body.data.executions[0]).not.toHaveProperty('results');

    const asOther = await api('GET', `/api/v1/script?include=executions&filter=id%3D${victimScript.id}`, { token: bystander.token });
    expect(asOther.status).toBe(200);
    expect(asOther.body.data[0].executions.map((e: any) => e.id)).toEqual([theirs.id]);

    const asAdmin = await api('GET', `/api/v1/script/${victimScript.slug}?include=executions`, { token: superToken });
    expect(asAdmin.body.data.executions.map((e: any) => e.id).sort()).toEqual([own.id, theirs.id].sort());
    // Newest first.
    expect(asAdmin.body.data.executions.map((e: any) => e.id)).toEqual([theirs.id, own.id]);
  });
});

describe('deleting a user', () => {
  it('removes their login, scripts, executions (a running one too) and logs; other users\' data stays', async () => {
    // The victim's runs: one finished (with a log), one running, one of another user's script.
    const finished = await runScript(victim.token, victimScript.slug);
    await waitForExecution(victim.token, finished.id);
    const ofOthers = await runScript(victim.token, bystanderScript.slug);
    await waitForExecution(victim.token, ofOthers.id);
    const running = await runScript(victim.token, victimGated.slug, { body: { gate: g.path } });
    await waitForLog(victim.token, running.id, (lines) => lines.some((l) => l.text === 'waiting at the gate'));
    expect((await api('GET', `/api/v1/execution/${running.id}`, { token: victim.token })).body.data.status).toBe('RUNNING');
    expect(processesOf(running.id)).not.toEqual([]);
    // The bystander's: their own script's run, and a run of the victim's public script.
    const bystanderOwn = await runScript(bystander.token, bystanderScript.slug);
    const bystanderOfVictim = await runScript(bystander.token, victimScript.slug);
    await Promise.all([waitForExecution(bystander.token, bystanderOwn.id), waitForExecution(bystander.token, bystanderOfVictim.id)]);

    const deleted = await api('DELETE', `/api/v1/user/${victim.id}`, { token: superToken });
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toMatchObject({ id: victim.id, email: victim.email });

    // The login is refused at once; the old token within the contract's second (every
    // gateway worker learns of it from its revocation stream).
    const relogin = await api('POST', '/auth', { body: { email: victim.email, password: strongPassword } });
    expect(relogin.status).toBe(401);
    await eventually(async () => (await api('GET', '/api/v1/user/me', { token: victim.token })).status === 401, 1000);

    // The saga finishes: the user, their scripts, executions and logs are gone for everyone.
    await eventually(async () => (await api('GET', `/api/v1/user/${victim.id}`, { token: superToken })).status === 404);
    for (const s of [victimScript, victimGated]) {
      expect((await api('GET', `/api/v1/script/${s.id}`, { token: superToken })).status).toBe(404);
    }
    for (const e of [finished, ofOthers, running]) {
      expect({ id: e.id, status: (await api('GET', `/api/v1/execution/${e.id}`, { token: superToken })).status }).toEqual({ id: e.id, status: 404 });
      expect({ id: e.id, status: (await api('GET', `/api/v1/execution/${e.id}/log`, { token: superToken })).status }).toEqual({ id: e.id, status: 404 });
    }
    // The running script's process was stopped.
    await eventually(async () => processesOf(running.id).length === 0);
    const listed = await api('GET', `/api/v1/execution?user_id=${victim.id}`, { token: superToken });
    expect(listed.body.total).toBe(0);
    const scripts = await api('GET', `/api/v1/script?filter=user_id%3D${victim.id}`, { token: superToken });
    expect(scripts.body.total).toBe(0);

    // The bystander keeps their script, their runs, and their run of the deleted script,
    // which still says which script it ran.
    expect((await api('GET', `/api/v1/script/${bystanderScript.id}`, { token: bystander.token })).status).toBe(200);
    const own = await api('GET', `/api/v1/execution/${bystanderOwn.id}`, { token: bystander.token });
    expect(own.body.data).toMatchObject({ status: 'FINISHED', results: 'OK' });
    const kept = await api('GET', `/api/v1/execution/${bystanderOfVictim.id}?include=script`, { token: bystander.token });
    expect(kept.status).toBe(200);
    expect(kept.body.data).toMatchObject({ script_id: victimScript.id, status: 'FINISHED', script: null });
    expect((await api('GET', `/api/v1/execution/${bystanderOfVictim.id}/log`, { token: bystander.token })).status).toBe(200);
    expect((await login(bystander.email, strongPassword)).access_token).toBeTruthy();
  });
});
