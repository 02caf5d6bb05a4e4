import type http2 from 'node:http2';
import { create, fromJson, toJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { execution } from '@gef/protos';
import pino from 'pino';
import client from 'prom-client';
import { serviceClient } from '../src/clients';
import { compactJsonText, jsonDepthExceeds, jsonTextDepthExceeds, maxJsonValueDepth, rpcJsonDepth, rpcRecursionLimit } from '../src/json-depth';
import { closeServer, createRpcServer, listen } from '../src/rpc-server';

/** JSON nested `levels` deep, objects and arrays in turn (a scalar is 0 levels). */
function nested(levels: number): JsonValue {
  let v: JsonValue = 'leaf';
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
  return v;
}
/** An object nested `levels` deep. */
const nestedObject = (levels: number): JsonObject => ({ k: nested(levels - 1) });

describe('JSON depth', () => {
  it('counts levels of objects and arrays in a value and in a text, without recursion', () => {
    expect(jsonDepthExceeds('x', 0)).toBe(false);
    expect(jsonDepthExceeds({}, 0)).toBe(true);
    expect(jsonDepthExceeds({ a: [1] }, 2)).toBe(false);
    expect(jsonDepthExceeds({ a: [1] }, 1)).toBe(true);
    expect(jsonDepthExceeds(nested(maxJsonValueDepth), maxJsonValueDepth)).toBe(false);
    expect(jsonDepthExceeds(nested(maxJsonValueDepth + 1), maxJsonValueDepth)).toBe(true);
    expect(jsonTextDepthExceeds(JSON.stringify(nested(maxJsonValueDepth)), maxJsonValueDepth)).toBe(false);
    expect(jsonTextDepthExceeds(JSON.stringify(nested(maxJsonValueDepth + 1)), maxJsonValueDepth)).toBe(true);
    // Brackets inside strings are text.
    expect(jsonTextDepthExceeds('{"a":"[[[[\\"{{{{"}', 1)).toBe(false);
    // Far deeper than any stack.
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(jsonDepthExceeds(deep, maxJsonValueDepth)).toBe(true);
    expect(jsonTextDepthExceeds('['.repeat(1_000_000), maxJsonValueDepth)).toBe(true);
  });
});

// Params and results cross every RPC as google.protobuf.Struct / Value: two messages a level,
// which protobuf-es decodes to 100 by default (about 48 levels of JSON).
describe('RPC transports and servers', () => {
  let server: http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  let url: string;
  let received: execution.UpdateExecutionRequest | undefined;
  let answer: JsonValue;

  beforeAll(async () => {
    server = createRpcServer({
      routes: (router) =>
        router.service(execution.ExecutionService, {
          getExecution: () => create(execution.GetExecutionResponseSchema, { execution: create(execution.ExecutionSchema, { id: 'x', params: answer as JsonObject }) }),
          listExecutions: () =>
            create(execution.ListExecutionsResponseSchema, {
              executions: [create(execution.ExecutionSchema, { id: 'x', results: fromJson(ValueSchema, answer, { recursionLimit: rpcRecursionLimit }) })],
            }),
          updateExecution: (req) => {
            received = req;
            return create(execution.UpdateExecutionResponseSchema, {});
          },
        }),
      logger: pino({ level: 'silent' }),
      registry: new client.Registry(),
    });
    server.on('session', (s) => sessions.add(s));
    url = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  });
  afterAll(async () => {
    // The client's connection ends with its session (the transport has no close).
    for (const s of sessions) s.destroy();
    await closeServer(server, 1000);
  });

  it.each([48, 64, 128, rpcJsonDepth])('carry params and results nested %i levels both ways', async (levels) => {
    const rpc = serviceClient(execution.ExecutionService, url);
    answer = nested(levels);
    const listed = await rpc.listExecutions({});
    expect(toJson(ValueSchema, listed.executions[0]!.results!)).toEqual(answer);
    answer = nestedObject(levels);
    expect((await rpc.getExecution({ id: 'x' })).execution?.params).toEqual(answer);
    await rpc.updateExecution({ id: 'x', results: fromJson(ValueSchema, nested(levels), { recursionLimit: rpcRecursionLimit }) });
    expect(toJson(ValueSchema, received!.results!)).toEqual(nested(levels));
  });
});

describe('compactJsonText', () => {
  it('drops whitespace outside strings, as JSON.stringify writes it, and keeps every string as it is', () => {
    const cases = [
      '{"area": "kenya", "years": [2001, 2020]}',
      '{"a \\" b": "x, y: z", "k": [1, 2, {"é": "ü \\\\", "t": "tab\\tand \\"quote\\""}], "e": {}, "n": null}',
      ' [ 1 ,\n\t2 ] ',
      '"a string: with, spaces"',
      '{"😀 key": "😀, value"}',
    ];
    for (const text of cases) expect(compactJsonText(text)).toBe(JSON.stringify(JSON.parse(text)));
  });

  it('returns compact text as it is', () => {
    const text = '{"a":[1,2]}';
    expect(compactJsonText(text)).toBe(text);
  });
});
