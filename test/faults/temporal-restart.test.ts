/**
 * Issue 6, faults: a restart of the Temporal dev server during runs and builds. Runs held
 * at a gate and a build in flight when it stops all complete after it returns; runs and
 * uploads submitted while it is down are accepted (200, PENDING: the services' outboxes)
 * and start when it returns.
 */
import { randomBytes } from 'node:crypto';
import { api, login, superadminCredentials } from '../e2e/helpers/api';
import { cliArchive, upload, waitForStatus } from '../e2e/helpers/archives';
import { executionLog, gate, publishScript, pythonGate, waitForExecution, waitForLog, type Gate } from '../e2e/helpers/executions';
import { eventually, expectAttemptsComplete, healthStatus, Outages } from './helpers';

jest.setTimeout(600_000);

const gates: Gate[] = [];
const outages = new Outages();

afterAll(async () => {
  for (const g of gates) g.open();
  await outages.restore();
  for (const g of gates) g.remove();
});

const main = `${pythonGate}
def run(params, logger):
    logger.info("begin")
    wait_gate(params)
    logger.info("end")
    return {"tag": params["tag"]}
`;
const lines = ['begin', 'end'];

describe('a restart of Temporal', () => {
  it('lets runs and builds in flight finish, and accepts runs and uploads meanwhile, started when it returns', async () => {
    // The superadmin: no per-user slot limit, so every run may run at once.
    const { access_token: token } = await login(superadminCredentials().email, superadminCredentials().password);
    const tag = randomBytes(4).toString('hex');
    const script = await publishScript(token, `Fault Temporal ${tag}`, main);
    const open = gate();
    open.open();
    gates.push(open);

    const run = async (gatePath: string, label: string) => {
      const res = await api('POST', `/api/v1/script/${script.slug}/run`, { token, body: { gate: gatePath, tag: label } });
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ status: 'PENDING', progress: 0 });
      return res.body.data.id as string;
    };

    // Two runs held at their gates, running.
    const held = [gate(), gate()];
    gates.push(...held);
    const heldIds = [await run(held[0]!.path, 'held-0'), await run(held[1]!.path, 'held-1')];
    for (const id of heldIds) await waitForLog(token, id, (l) => l.some((x) => x.text === 'begin'));
    // A build in flight as Temporal stops.
    const inFlight = await upload(token, cliArchive(`Fault Temporal Build A ${tag}`), 'a.tar.gz');
    expect(inFlight.status).toBe(200);

    await outages.stop('temporal');
    await eventually(async () => (await healthStatus()) === 503, 30_000, '/api-health 503 while Temporal is down');

    // Accepted while down: runs and an upload.
    const queuedIds = [await run(open.path, 'queued-0'), await run(open.path, 'queued-1'), await run(open.path, 'queued-2')];
    const queuedUpload = await upload(token, cliArchive(`Fault Temporal Build B ${tag}`), 'b.tar.gz');
    expect(queuedUpload.status).toBe(200);
    expect(queuedUpload.body.data).toMatchObject({ status: 'PENDING' });
    // One held run's script ends while Temporal is away (its completion cannot be reported yet).
    held[0]!.open();
    await waitForLog(token, heldIds[0]!, (l) => l.some((x) => x.text === 'end'));
    // Nothing queued has started: there is no workflow to start it.
    for (const id of queuedIds) expect((await api('GET', `/api/v1/execution/${id}`, { token })).body.data.status).toBe('PENDING');

    await outages.start('temporal');
    held[1]!.open();

    for (const id of [...heldIds, ...queuedIds]) {
      const done = await waitForExecution(token, id, ['FINISHED', 'FAILED', 'CANCELLED'], 240_000);
      expect({ id, status: done.status }).toEqual({ id, status: 'FINISHED' });
      expect(done.results).toMatchObject({ tag: expect.stringMatching(/^(held|queued)-\d$/) });
      expectAttemptsComplete(await executionLog(token, id), lines);
    }
    for (const res of [inFlight, queuedUpload]) {
      const { script: built } = await waitForStatus(token, res.body.data.id, ['SUCCESS', 'FAIL'], 240_000);
      expect(built.status).toBe('SUCCESS');
    }
    // The script built from the upload made while Temporal was down runs.
    const late = await api('POST', `/api/v1/script/${queuedUpload.body.data.slug}/run`, { token, body: {} });
    expect(late.status).toBe(200);
    expect((await waitForExecution(token, late.body.data.id)).status).toBe('FINISHED');
    await eventually(async () => (await healthStatus()) === 200, 60_000, '/api-health 200 again');
  });
});
