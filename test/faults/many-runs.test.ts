/**
 * Issue 6, faults at scale: hundreds of runs in flight (the superadmin's, with no slot limit)
 * while, in turn, Temporal is killed, PostgreSQL restarted, the execution service killed and
 * the runner killed. Every run accepted ends FINISHED, with each attempt's lines once and in
 * order; runs submitted while Temporal is down are accepted and run when it returns.
 */
import { randomBytes } from 'node:crypto';
import type { PartName } from '../harness/stack';
import { api, login, superadminCredentials } from '../e2e/helpers/api';
import { executionLog, publishScript, terminalStatuses } from '../e2e/helpers/executions';
import { expectAttemptsComplete, Outages, sleep } from './helpers';

jest.setTimeout(1_800_000);

/** Runs in flight when a part goes down. */
const inFlight = 250;
/** How long a batch may take to end after its part returned. */
const drainMs = 300_000;

const main = `
def run(params, logger):
    logger.info("begin")
    logger.info("end")
    return {"tag": params["tag"]}
`;

const outages = new Outages();

afterAll(() => outages.restore());

let token = '';
let slug = '';

beforeAll(async () => {
  ({ access_token: token } = await login(superadminCredentials().email, superadminCredentials().password));
  ({ slug } = await publishScript(token, `Fault Many ${randomBytes(3).toString('hex')}`, main));
});

/**
 * Submits `n` runs, 40 at a time, as a client would: a 429 waits its `retry_after`, a 503
 * or a connection error is tried again after a pause. The accepted runs' ids, and what was
 * answered on the way.
 */
async function submit(n: number, label: string): Promise<{ ids: string[]; answers: Record<string, number> }> {
  const ids: string[] = [];
  const answers: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const k = next++;
      for (let tries = 0; ; tries++) {
        const res = await api('POST', `/api/v1/script/${slug}/run`, { token, body: { tag: `${label}-${k}` } }).catch(() => undefined);
        const status = res?.status ?? 0;
        answers[status] = (answers[status] ?? 0) + 1;
        if (status === 200) {
          expect(res!.body.data).toMatchObject({ status: 'PENDING', progress: 0 });
          ids.push(res!.body.data.id as string);
          break;
        }
        if (status === 429) {
          await sleep(1000 * Number(res!.body.retry_after ?? 1));
          continue;
        }
        if (tries >= 60 || (status !== 0 && status !== 503)) throw new Error(`run ${label}-${k}: ${status} ${res?.text ?? ''}`);
        await sleep(500);
      }
    }
  };
  await Promise.all(Array.from({ length: 40 }, worker));
  return { ids, answers };
}

/** How many of `ids` have each status (a read that fails counts as its HTTP status). */
async function statuses(ids: readonly string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < ids.length; i += 50) {
    const found = await Promise.all(
      ids.slice(i, i + 50).map((id) =>
        api('GET', `/api/v1/execution/${id}?exclude=params,results`, { token }).then(
          (r) => (r.status === 200 ? (r.body.data.status as string) : `HTTP ${r.status}`),
          () => 'no answer',
        ),
      ),
    );
    for (const s of found) counts[s] = (counts[s] ?? 0) + 1;
  }
  return counts;
}

/** Waits until every run ended (or the time is up); their statuses. */
async function ended(ids: readonly string[]): Promise<Record<string, number>> {
  const deadline = Date.now() + drainMs;
  for (;;) {
    const counts = await statuses(ids);
    const terminal = terminalStatuses.reduce((n, status) => n + (counts[status] ?? 0), 0);
    if (terminal === ids.length || Date.now() > deadline) return counts;
    await sleep(2000);
  }
}

/** Every run's log: each attempt's lines once, in order, the last attempt's all of them. */
async function expectLogsComplete(ids: readonly string[]): Promise<void> {
  const wrong: string[] = [];
  for (let i = 0; i < ids.length; i += 25) {
    await Promise.all(
      ids.slice(i, i + 25).map(async (id) => {
        try {
          expectAttemptsComplete(await executionLog(token, id), ['begin', 'end']);
        } catch (err) {
          wrong.push(`${id}: ${(err as Error).message}`);
        }
      }),
    );
  }
  expect(wrong).toEqual([]);
}

/** Takes a part down with `inFlight` runs in flight, brings it back, and checks every run. */
async function throughOutage(part: PartName, how: 'kill' | 'stop', whileDown?: (label: string) => Promise<string[]>): Promise<void> {
  const label = `${part}-${randomBytes(2).toString('hex')}`;
  const { ids } = await submit(inFlight, label);
  await (how === 'kill' ? outages.kill(part) : outages.stop(part));
  const extra = whileDown ? await whileDown(label) : [];
  await sleep(2000);
  await outages.start(part);
  const all = [...ids, ...extra];
  expect(await ended(all)).toEqual({ FINISHED: all.length });
  await expectLogsComplete(all);
}

describe('hundreds of runs in flight', () => {
  it('all finish after Temporal is killed, with the runs accepted while it was down', async () => {
    await throughOutage('temporal', 'kill', async (label) => {
      const { ids, answers } = await submit(100, `${label}-down`);
      // Accepted at once into the execution service's outbox, not refused.
      expect(Object.keys(answers)).toEqual(['200']);
      return ids;
    });
  });

  it('all finish after PostgreSQL restarts', async () => {
    await throughOutage('postgres', 'stop');
  });

  it('all finish after the execution service is killed', async () => {
    await throughOutage('execution', 'kill');
  });

  it('all finish after the runner is killed', async () => {
    await throughOutage('runner', 'kill');
  });
});
