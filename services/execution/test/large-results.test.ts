import { randomUUID } from 'node:crypto';
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { maxResultsBytes, maxResultsValues, rpcRecursionLimit } from '@gef/common';
import { execution } from '@gef/protos';
import { resultsTooBigLine, resultsTooManyValuesLine } from '../src/domain/runner-attempts';
import { startRealServer, type RealServer } from './support/real-server';
import { caller, failure, logRows, type ServiceFixture } from './support/service-fixture';

const S = execution.ExecutionStatus;
const valueOf = (json: JsonValue) => fromJson(ValueSchema, json, { recursionLimit: rpcRecursionLimit });

/** An array of `values - 1` zeros: `values` JSON values in all. */
const zeros = (values: number): number[] => new Array<number>(values - 1).fill(0);
/** A JSON string `bytes` long as text (quotes included). */
const textOf = (bytes: number): string => 'x'.repeat(bytes - 2);

// Results cross every RPC as google.protobuf.Value, a message per JSON value: the platform
// stores at most maxResultsBytes of JSON text and maxResultsValues values. The service's real
// server (h2c, port 0) and the transport every caller uses, over a real PostgreSQL.
describe('large results', () => {
  let real: RealServer;
  let f: ServiceFixture;
  let rpc: RealServer['rpc'];
  const admin = caller(randomUUID(), 'ADMIN');

  beforeAll(async () => {
    real = await startRealServer('gef_execution_large_results_test');
    ({ f, rpc } = real);
  }, 120_000);

  afterAll(() => real?.stop(), 60_000);

  async function newRun() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const e = (await rpc.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
    return { userId, id: e.id };
  }

  it(`takes PATCH results of ${maxResultsValues} values and refuses more (InvalidArgument)`, async () => {
    const { userId, id } = await newRun();
    await rpc.updateExecution({ id, caller: admin, results: valueOf(zeros(maxResultsValues)) });
    const err = await failure(rpc.updateExecution({ id, caller: admin, results: valueOf(zeros(maxResultsValues + 1)) }));
    expect({ code: err.code, message: err.rawMessage }).toEqual({
      code: Code.InvalidArgument,
      message: `results hold more than ${maxResultsValues} JSON values (numbers, strings, booleans, nulls, arrays and objects)`,
    });
    const got = (await rpc.getExecution({ id, caller: caller(userId) })).execution!;
    expect((toJson(ValueSchema, got.results!) as number[]).length).toBe(maxResultsValues - 1);
  }, 30_000);

  it(`takes PATCH results of ${maxResultsBytes / (1024 * 1024)} MiB of JSON and refuses more (InvalidArgument)`, async () => {
    const { userId, id } = await newRun();
    await rpc.updateExecution({ id, caller: admin, results: valueOf(textOf(maxResultsBytes)) });
    const err = await failure(rpc.updateExecution({ id, caller: admin, results: valueOf(textOf(maxResultsBytes + 1)) }));
    expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.InvalidArgument, message: `results are larger than ${maxResultsBytes / (1024 * 1024)} MiB of JSON` });
    // Bytes of UTF-8, not characters: 'é' is two.
    const accented = 'é'.repeat(maxResultsBytes / 2);
    expect((await failure(rpc.updateExecution({ id, caller: admin, results: valueOf(accented) }))).code).toBe(Code.InvalidArgument);
    const got = (await rpc.getExecution({ id, caller: caller(userId) })).execution!;
    expect((toJson(ValueSchema, got.results!) as string).length).toBe(maxResultsBytes - 2);
  }, 30_000);

  it.each([
    ['two million numbers (6 MB of JSON)', JSON.stringify(zeros(2_000_000)), () => resultsTooManyValuesLine],
    [`${maxResultsValues + 2} values in objects`, JSON.stringify({ rows: Array.from({ length: maxResultsValues / 2 }, (_, i) => ({ i })) }), () => resultsTooManyValuesLine],
    [`more than ${maxResultsBytes} bytes`, JSON.stringify({ text: 'x'.repeat(maxResultsBytes) }), () => resultsTooBigLine],
  ])('ends a run whose runner reports results of %s FAILED, saying why, and stores no results', async (_name, resultsJson, line) => {
    const { userId, id } = await newRun();
    const grant = await rpc.startExecutionAttempt({ executionId: id, attempt: 1, runner: 'runner-test' });
    const outcome = { executionId: id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson, lines: [{ text: 'done', level: execution.LogLevel.INFO, seq: 0 }], progress: 40 };
    expect(await rpc.completeExecutionAttempt(outcome)).toMatchObject({ applied: true, status: S.FAILED });
    // Delivered again (the runner's answer was lost): nothing changes, no line twice.
    expect(await rpc.completeExecutionAttempt(outcome)).toMatchObject({ applied: false, status: S.FAILED });
    const got = (await rpc.getExecution({ id, caller: caller(userId) })).execution!;
    expect(got).toMatchObject({ status: S.FAILED, progress: 40 });
    expect(got.endDate).toBeDefined();
    expect(got.results).toBeUndefined();
    const lines = logRows(await rpc.listExecutionLogs({ id, caller: caller(userId) }));
    expect(lines.map((l) => [execution.LogLevel[l.level], l.text])).toEqual([
      ['INFO', 'Attempt 1 started on runner runner-test'],
      ['INFO', 'done'],
      ['ERROR', line()],
    ]);
  }, 30_000);

  it(`keeps a runner's results of ${maxResultsValues} values and of ${maxResultsBytes} bytes`, async () => {
    for (const results of [zeros(maxResultsValues), { rows: Array.from({ length: maxResultsValues / 2 - 1 }, (_, i) => ({ i })) }, textOf(maxResultsBytes)]) {
      const { userId, id } = await newRun();
      const grant = await rpc.startExecutionAttempt({ executionId: id, attempt: 1, runner: 'runner-test' });
      const done = await rpc.completeExecutionAttempt({ executionId: id, runnerToken: grant.runnerToken, status: S.FINISHED, resultsJson: JSON.stringify(results), lines: [] });
      expect(done).toMatchObject({ applied: true, status: S.FINISHED });
      const got = (await rpc.getExecution({ id, caller: caller(userId) })).execution!;
      expect(toJson(ValueSchema, got.results!)).toEqual(results);
    }
  }, 30_000);
});
