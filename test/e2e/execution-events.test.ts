/**
 * CONTRACT §6 `GET /execution/<id>/events` against the real stack: Server-Sent Events of a
 * run's log lines, progress and status while it runs, and a reconnect with Last-Event-ID
 * that resumes exactly after the last line the client had.
 */
import { randomBytes } from 'node:crypto';
import { api, newUser } from './helpers/api';
import { EventStream, executionLog, gate, logEvents, publishScript, pythonGate, runScript, type Gate } from './helpers/executions';

jest.setTimeout(300_000);

const gates: Gate[] = [];
afterAll(() => {
  for (const g of gates) g.open();
});

describe('the event stream of a run', () => {
  it('sends lines, progress and status while the run goes, and resumes exactly after Last-Event-ID', async () => {
    const owner = await newUser('events-owner');
    const other = await newUser('events-other');
    const script = await publishScript(
      owner.token,
      `Exec Events ${randomBytes(4).toString('hex')}`,
      `${pythonGate}
def run(params, logger):
    for i in range(1, 4):
        logger.info("before %d" % i)
    logger.send_progress(25)
    wait_gate(params)
    for i in range(4, 7):
        logger.warning("after %d" % i)
    logger.send_progress(75.4)
    return {"done": True}
`,
    );
    const g = gate();
    gates.push(g);
    const created = await runScript(owner.token, script.slug, { body: { gate: g.path } });
    const path = `/api/v1/execution/${created.id}/events`;

    expect((await EventStream.open(path, { Authorization: `Bearer ${other.token}` })).status).toBe(404);

    const first = await EventStream.open(path, { Authorization: `Bearer ${owner.token}`, Accept: 'text/event-stream', 'Accept-Encoding': 'gzip' });
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(first.headers['content-encoding']).toBeUndefined();
    // Everything up to the gate arrives while the script waits there.
    await first.until((events) => logEvents(events).some((l) => l.text === 'before 3') && events.some((e) => e.event === 'progress' && JSON.parse(e.data).progress === 25));
    const running = await api('GET', `/api/v1/execution/${created.id}`, { token: owner.token });
    expect(running.body.data.status).toBe('RUNNING');
    const statuses = first.events.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data).status);
    expect(statuses[statuses.length - 1]).toBe('RUNNING');
    expect(statuses).not.toContain('FINISHED');
    const seen = logEvents(first.events);
    // Each log event's id is its line's id.
    for (const e of first.events.filter((x) => x.event === 'log')) expect(Number(e.id)).toBe(JSON.parse(e.data).id);
    const before2 = seen.find((l) => l.text === 'before 2')!;
    first.close();

    g.open();
    const resumed = await EventStream.open(path, { Authorization: `Bearer ${owner.token}`, 'Last-Event-ID': String(before2.id) });
    expect(resumed.status).toBe(200);
    const events = await resumed.closed();
    const lines = logEvents(events);
    // Exactly the lines after before 2, once each, in order: what the log route has after it.
    expect(lines.map((l) => l.id)).toEqual((await executionLog(owner.token, created.id, `?last-id=${before2.id}`)).map((l) => l.id));
    expect(lines[0]?.text).toBe('before 3');
    expect(lines.filter((l) => /^after \d$/.test(l.text)).map((l) => [l.text, l.level])).toEqual([
      ['after 4', 'WARNING'],
      ['after 5', 'WARNING'],
      ['after 6', 'WARNING'],
    ]);
    expect(new Set(lines.map((l) => l.id)).size).toBe(lines.length);
    const progress = events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data).progress);
    // Progress that changes within one round of the watch is told once, as it stands.
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress[progress.length - 1]).toBe(100);
    const last = events.filter((e) => e.event === 'status').pop();
    expect(JSON.parse(last!.data)).toMatchObject({ status: 'FINISHED', execution: { id: created.id, status: 'FINISHED', results: { done: true } } });
    expect(events[events.length - 1]?.event).toBe('end');
    // Event ids never go back.
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // A finished run's stream sends what is left and ends at once; resuming after the last line sends no line.
    const tail = await EventStream.open(`${path}?last-id=${lines[lines.length - 1]!.id}`, { Authorization: `Bearer ${owner.token}` });
    const tailEvents = await tail.closed();
    expect(logEvents(tailEvents)).toEqual([]);
    // Its state (progress 100, FINISHED with the results), then the end.
    expect(tailEvents.map((e) => e.event)).toEqual(['progress', 'status', 'end']);
    expect(JSON.parse(tailEvents[0]!.data)).toEqual({ progress: 100 });
    expect(JSON.parse(tailEvents[1]!.data)).toMatchObject({ status: 'FINISHED', execution: { results: { done: true } } });
  });

  it('ends within a second of its token being revoked (a logout), without an end event; a fresh token resumes it', async () => {
    const owner = await newUser('events-logout');
    const script = await publishScript(owner.token, `Exec Events Logout ${randomBytes(4).toString('hex')}`, `${pythonGate}
def run(params, logger):
    logger.info("waiting")
    wait_gate(params)
    return None
`);
    const g = gate();
    gates.push(g);
    const created = await runScript(owner.token, script.slug, { body: { gate: g.path } });
    const path = `/api/v1/execution/${created.id}/events`;
    const stream = await EventStream.open(path, { Authorization: `Bearer ${owner.token}` });
    expect(stream.status).toBe(200);
    const seen = await stream.until((events) => logEvents(events).some((l) => l.text === 'waiting'));
    const lastId = seen.filter((e) => e.event === 'log').pop()!.id!;
    expect((await api('POST', '/auth/logout', { token: owner.token, body: { refresh_token: owner.refresh } })).status).toBe(200);
    const loggedOut = Date.now();
    const events = await stream.closed(10_000);
    expect(Date.now() - loggedOut).toBeLessThan(1500);
    expect(events.map((e) => e.event)).not.toContain('end');
    // A new login picks the stream up after the last line it had.
    const again = await api('POST', '/auth', { body: { email: owner.email, password: owner.password } });
    const resumed = await EventStream.open(path, { Authorization: `Bearer ${again.body.access_token}`, 'Last-Event-ID': lastId });
    expect(resumed.status).toBe(200);
    g.open();
    const rest = await resumed.closed();
    expect(logEvents(rest).map((l) => l.text)).not.toContain('waiting');
    expect(rest.at(-1)?.event).toBe('end');
  });
});
