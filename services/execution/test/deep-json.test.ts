import { randomUUID } from 'node:crypto';
import { fromJson, toJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { maxJsonValueDepth, rpcRecursionLimit } from '@gef/common';
import { execution } from '@gef/protos';
import { resultsTooDeepLine } from '../src/domain/runner-attempts';
import { startRealServer, type RealServer } from './support/real-server';
import { caller, failure, logRows, type ServiceFixture } from './support/service-fixture';

const S = execution.ExecutionStatus;

/** JSON nested `levels` deep, objects and arrays in turn (a scalar is 0 levels). */
function nested(levels: number): JsonValue {
  let v: JsonValue = 'leaf';
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
  return v;
}
/** An object nested `levels` deep. */
const nestedObject = (levels: number): JsonObject => ({ k: nested(levels - 1) });
const valueOf = (json: JsonValue) => fromJson(ValueSchema, json, { recursionLimit: rpcRecursionLimit });

// Params and results cross the RPCs as google.protobuf.Struct / Value (two messages a level):
// the service's real server (h2c, port 0) and the transport every caller uses, over a real
// PostgreSQL. Nothing nested deeper than maxJsonValueDepth is taken in; what was stored deeper
// before stays readable.
describe('deeply nested params and results', () => {
  let real: RealServer;
  let f: ServiceFixture;
  let rpc: RealServer['rpc'];
  const admin = caller(randomUUID(), 'ADMIN');

  beforeAll(async () => {
    real = await startRealServer('gef_execution_deep_json_test');
    ({ f, rpc } = real);
  }, 120_000);

  afterAll(() => real?.stop(), 60_000);

  function someone() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    return { userId, script };
  }

  async function run(userId: string, scriptId: string, params: JsonObject = {}) {
    return (await rpc.runScript({ caller: caller(userId), idOrSlug: scriptId, params })).execution!;
  }

  it(`takes params nested ${maxJsonValueDepth} levels and refuses deeper ones (InvalidArgument)`, async () => {
    const { userId, script } = someone();
    const e = await run(userId, script.scriptId, nestedObject(maxJsonValueDepth));
    expect(e.params).toEqual(nestedObject(maxJsonValueDepth));
    for (const levels of [maxJsonValueDepth + 1, 55, 200]) {
      const err = await failure(run(userId, script.scriptId, nestedObject(levels)));
      expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.InvalidArgument, message: `params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays` });
    }
  });

  it(`takes results nested ${maxJsonValueDepth} levels in an update and refuses deeper ones (InvalidArgument)`, async () => {
    const { userId, script } = someone();
    const e = await run(userId, script.scriptId);
    const updated = await rpc.updateExecution({ id: e.id, caller: admin, results: valueOf(nested(maxJsonValueDepth)) });
    expect(toJson(ValueSchema, updated.execution!.results!)).toEqual(nested(maxJsonValueDepth));
    for (const levels of [maxJsonValueDepth + 1, 55, 200]) {
      const err = await failure(rpc.updateExecution({ id: e.id, caller: admin, results: valueOf(nested(levels)) }));
      expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.InvalidArgument, message: `results are nested deeper than ${maxJsonValueDepth} levels of objects and arrays` });
    }
    const got = await rpc.getExecution({ id: e.id, caller: caller(userId) });
    expect(toJson(ValueSchema, got.execution!.results!)).toEqual(nested(maxJsonValueDepth));
  });

  it.each([
    ['nested 33 levels', JSON.stringify(nested(maxJsonValueDepth + 1))],
    ['nested 55 levels', JSON.stringify(nested(55))],
    ['nested 200,000 levels', '['.repeat(200_000) + ']'.repeat(200_000)],
  ])('ends a run whose runner reports results %s FAILED, saying why, and stores no results', async (_name, resultsJson) => {
    const { userId, script } = someone();
    const e = await run(userId, script.scriptId);
    const grant = await rpc.startExecutionAttempt({ executionId: e.id, attempt: 1, runner: 'runner-test' });
    const outcome = { executionId: e.id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson, lines: [{ text: 'done', level: execution.LogLevel.INFO, seq: 0 }], progress: 40 };
    expect(await rpc.completeExecutionAttempt(outcome)).toMatchObject({ applied: true, status: S.FAILED });
    // Delivered again (the runner's answer was lost): nothing changes, no line twice.
    expect(await rpc.completeExecutionAttempt(outcome)).toMatchObject({ applied: false, status: S.FAILED });
    const got = (await rpc.getExecution({ id: e.id, caller: caller(userId) })).execution!;
    expect(got).toMatchObject({ status: S.FAILED, progress: 40 });
    expect(got.endDate).toBeDefined();
    expect(got.results).toBeUndefined();
    const lines = logRows(await rpc.listExecutionLogs({ id: e.id, caller: caller(userId) }));
    expect(lines.map((l) => [execution.LogLevel[l.level], l.text])).toEqual([
      ['INFO', 'Attempt 1 started on runner runner-test'],
      ['INFO', 'done'],
      ['ERROR', resultsTooDeepLine],
    ]);
  });

  it(`keeps a runner's results nested ${maxJsonValueDepth} levels`, async () => {
    const { userId, script } = someone();
    const e = await run(userId, script.scriptId);
    const grant = await rpc.startExecutionAttempt({ executionId: e.id, attempt: 1, runner: 'runner-test' });
    const done = await rpc.completeExecutionAttempt({ executionId: e.id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson: JSON.stringify(nested(maxJsonValueDepth)), lines: [] });
    expect(done).toMatchObject({ applied: true, status: S.FINISHED });
    const got = (await rpc.getExecution({ id: e.id, caller: caller(userId) })).execution!;
    expect(toJson(ValueSchema, got.results!)).toEqual(nested(maxJsonValueDepth));
  });

  it('reads and lists rows stored before the limit held, however deep', async () => {
    const { userId, script } = someone();
    const stored = async (params: JsonValue, results: JsonValue) => {
      const e = await run(userId, script.scriptId);
      await f.orm.em
        .fork()
        .execute(`update execution set status = 'FINISHED', params = ?::jsonb, results = ?::jsonb where id = ?`, [JSON.stringify(params), JSON.stringify(results), e.id]);
      return e.id;
    };
    // What the gateway let through before (64 levels) and a script's results (55 levels).
    const deep64 = await stored(nestedObject(64), nested(64));
    const deep55 = await stored({ a: 1 }, nested(55));
    // Deeper than any RPC carries: the results come as their JSON text.
    const deeper = await stored({ a: 2 }, nested(300));

    const get = async (id: string) => (await rpc.getExecution({ id, caller: caller(userId) })).execution!;
    expect((await get(deep64)).params).toEqual(nestedObject(64));
    expect(toJson(ValueSchema, (await get(deep64)).results!)).toEqual(nested(64));
    expect(toJson(ValueSchema, (await get(deep55)).results!)).toEqual(nested(55));
    // As a JSON string of their text.
    expect(JSON.parse(toJson(ValueSchema, (await get(deeper)).results!) as string)).toEqual(nested(300));

    for (const list of [
      await rpc.listExecutions({ caller: caller(userId), ownOnly: true }),
      await rpc.listExecutions({ caller: admin, userId }),
      await rpc.listExecutions({ caller: admin, perPage: 100, page: 1 }),
    ]) {
      const byId = new Map(list.executions.map((e) => [e.id, e]));
      expect(byId.get(deep64)?.params).toEqual(nestedObject(64));
      expect(toJson(ValueSchema, byId.get(deep64)!.results!)).toEqual(nested(64));
      expect(toJson(ValueSchema, byId.get(deep55)!.results!)).toEqual(nested(55));
      expect(JSON.parse(toJson(ValueSchema, byId.get(deeper)!.results!) as string)).toEqual(nested(300));
    }
  });

  describe('as JSON text (json_text), as gateways ask', () => {
    it('takes params as text, refusing text nested too deep, not JSON, or not an object, and answers with text', async () => {
      const { userId, script } = someone();
      const made = (await rpc.runScript({ caller: caller(userId), idOrSlug: script.scriptId, paramsJson: JSON.stringify(nestedObject(maxJsonValueDepth)), jsonText: true })).execution!;
      expect(made.params).toBeUndefined();
      expect(JSON.parse(made.paramsJson)).toEqual(nestedObject(maxJsonValueDepth));
      const refusals = [
        [JSON.stringify(nestedObject(maxJsonValueDepth + 1)), `params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`],
        ['{' + '"k":['.repeat(200_000), `params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`],
        ['{"a": ', 'params must be JSON text'],
        ['[1, 2]', 'params must be a JSON object'],
        ['"text"', 'params must be a JSON object'],
      ];
      for (const [paramsJson, message] of refusals) {
        const err = await failure(rpc.runScript({ caller: caller(userId), idOrSlug: script.scriptId, paramsJson, jsonText: true }));
        expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.InvalidArgument, message });
      }
    });

    it('takes results as text and answers every read with text, results stored too deep as a JSON string of their text', async () => {
      const { userId, script } = someone();
      const e = await run(userId, script.scriptId, { a: 1 });
      const updated = await rpc.updateExecution({ id: e.id, caller: admin, resultsJson: JSON.stringify({ answer: [1, 2, 3] }), status: S.FINISHED, jsonText: true });
      expect(updated.execution!.results).toBeUndefined();
      expect(JSON.parse(updated.execution!.resultsJson!)).toEqual({ answer: [1, 2, 3] });
      const err = await failure(rpc.updateExecution({ id: e.id, caller: admin, resultsJson: JSON.stringify(nested(maxJsonValueDepth + 1)), jsonText: true }));
      expect(err.rawMessage).toBe(`results are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`);

      const deeper = await run(userId, script.scriptId, { b: 2 });
      await f.orm.em.fork().execute(`update execution set status = 'FINISHED', results = ?::jsonb where id = ?`, [JSON.stringify(nested(300)), deeper.id]);
      const none = await run(userId, script.scriptId);

      const got = async (id: string) => (await rpc.getExecution({ id, caller: caller(userId), jsonText: true })).execution!;
      expect(JSON.parse((await got(e.id)).paramsJson)).toEqual({ a: 1 });
      expect(JSON.parse((await got(e.id)).resultsJson!)).toEqual({ answer: [1, 2, 3] });
      expect(JSON.parse(JSON.parse((await got(deeper.id)).resultsJson!) as string)).toEqual(nested(300));
      expect((await got(none.id)).resultsJson).toBeUndefined();
      expect((await rpc.getExecution({ id: e.id, caller: caller(userId), jsonText: true, excludeParams: true })).execution!.paramsJson).toBe('');

      const list = await rpc.listExecutions({ caller: caller(userId), ownOnly: true, jsonText: true });
      const byId = new Map(list.executions.map((x) => [x.id, x]));
      expect(list.executions.every((x) => x.params === undefined && x.results === undefined)).toBe(true);
      expect(JSON.parse(byId.get(e.id)!.resultsJson!)).toEqual({ answer: [1, 2, 3] });
      expect(JSON.parse(byId.get(deeper.id)!.paramsJson)).toEqual({ b: 2 });

      const cancelled = await rpc.cancelExecution({ id: none.id, caller: caller(userId), jsonText: true });
      expect(JSON.parse(cancelled.execution!.paramsJson)).toEqual({});

      for await (const m of rpc.watchExecution({ id: e.id, caller: caller(userId), jsonText: true })) {
        if (m.event.case !== 'status') continue;
        expect(m.event.value.execution!.results).toBeUndefined();
        expect(JSON.parse(m.event.value.execution!.resultsJson!)).toEqual({ answer: [1, 2, 3] });
        break;
      }
    });
  });
});
