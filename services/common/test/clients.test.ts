import type http2 from 'node:http2';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { health } from '@gef/protos';
import client from 'prom-client';
import { retryUnavailable, serviceClient } from '../src/clients';
import { InvalidArgument } from '../src/errors';
import { createLogger } from '../src/logger';
import { closeServer, createRpcServer, listen } from '../src/rpc-server';

/** A unary call as an interceptor sees it: only what retryUnavailable reads. */
const unaryCall = (signal: AbortSignal) => ({ stream: false, signal }) as unknown as UnaryRequest;

describe('retryUnavailable', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('retries Unavailable with a doubling wait until an answer', async () => {
    let calls = 0;
    const answer = {} as UnaryResponse;
    const next = jest.fn(async () => {
      calls++;
      if (calls < 3) throw new ConnectError('away', Code.Unavailable);
      return answer;
    });
    const call = retryUnavailable(10_000)(next)(unaryCall(new AbortController().signal));
    await jest.advanceTimersByTimeAsync(99);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(199);
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(1);
    await expect(call).resolves.toBe(answer);
    expect(calls).toBe(3);
  });

  it('passes other errors through at once', async () => {
    const next = jest.fn(async (): Promise<UnaryResponse> => {
      throw new ConnectError('no', Code.NotFound);
    });
    await expect(retryUnavailable(10_000)(next)(unaryCall(new AbortController().signal))).rejects.toMatchObject({ code: Code.NotFound });
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('gives up as soon as the call is aborted, also while waiting to retry', async () => {
    const next = jest.fn(async (): Promise<UnaryResponse> => {
      throw new ConnectError('away', Code.Unavailable);
    });
    const aborter = new AbortController();
    const call = retryUnavailable(60_000)(next)(unaryCall(aborter.signal));
    let settled = false;
    call.catch(() => undefined).finally(() => (settled = true));
    // Into the third wait (400 ms), then aborted: no timer needs to fire for the call to end.
    await jest.advanceTimersByTimeAsync(300 + 50);
    expect(next).toHaveBeenCalledTimes(3);
    aborter.abort();
    await Promise.resolve();
    await Promise.resolve();
    await expect(call).rejects.toMatchObject({ code: Code.Unavailable });
    expect(settled).toBe(true);
    expect(next).toHaveBeenCalledTimes(3);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stops when its budget would be spent', async () => {
    const next = jest.fn(async (): Promise<UnaryResponse> => {
      throw new ConnectError('away', Code.Unavailable);
    });
    const call = retryUnavailable(1000)(next)(unaryCall(new AbortController().signal));
    const outcome = expect(call).rejects.toMatchObject({ code: Code.Unavailable });
    await jest.advanceTimersByTimeAsync(5000);
    await outcome;
    // 100 + 200 + 400 ms of waits fit in 1 s; the next (800 ms) would not.
    expect(next).toHaveBeenCalledTimes(4);
  });
});

describe('a transport retrying Unavailable, against a real server', () => {
  let server: http2.Http2Server;
  let url: string;
  let answer: (signal: AbortSignal) => Promise<void>;

  beforeAll(async () => {
    server = createRpcServer({
      routes: (router) =>
        router.service(health.HealthService, {
          check: async (_req, ctx) => {
            await answer(ctx.signal);
            return create(health.CheckResponseSchema, { service: 'test', healthy: true });
          },
        }),
      logger: createLogger('clients-test', 'silent'),
      registry: new client.Registry(),
    });
    url = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  });
  afterAll(() => closeServer(server, 100));

  it('keeps retrying for its whole budget, past the timeout of one try', async () => {
    // Away for 1 s; each try may take 300 ms, the retries 2 s.
    const until = Date.now() + 1000;
    answer = async () => {
      if (Date.now() < until) throw new ConnectError('away', Code.Unavailable);
    };
    const checks = serviceClient(health.HealthService, url, { retryUnavailableMs: 2000, timeoutMs: 300 });
    await expect(checks.check({})).resolves.toMatchObject({ healthy: true });
    expect(Date.now()).toBeGreaterThanOrEqual(until);
  });

  it('gives each try its own timeout: a try without an answer is DeadlineExceeded, not retried', async () => {
    let tries = 0;
    answer = async (signal) => {
      tries++;
      // Held until the client gives the try up.
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      throw new ConnectError('given up', Code.Canceled);
    };
    const checks = serviceClient(health.HealthService, url, { retryUnavailableMs: 5000, timeoutMs: 300 });
    await expect(checks.check({})).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(tries).toBe(1);
  });
});

describe('errors whose message quotes half a surrogate pair, against a real server', () => {
  let server: http2.Http2Server;
  let url: string;
  let fail: () => never;

  beforeAll(async () => {
    server = createRpcServer({
      routes: (router) =>
        router.service(health.HealthService, {
          check: async () => fail(),
        }),
      logger: createLogger('clients-test', 'silent'),
      registry: new client.Registry(),
    });
    url = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  });
  afterAll(() => closeServer(server, 100));

  // A request's text cut at 100 UTF-16 units may end inside an emoji: Connect could not write
  // such a message into its trailer, and the call was never answered.
  it.each([
    ['a domain error', () => new InvalidArgument(`Invalid filter condition: '${'a'.repeat(99)}\ud83d'`, 'invalid_filter')],
    ['a ConnectError', () => new ConnectError('unknown \udc00 field', Code.NotFound)],
  ])('answers %s at once, its message well formed', async (_what, error) => {
    fail = () => {
      throw error();
    };
    const checks = serviceClient(health.HealthService, url, { retryUnavailableMs: 0, timeoutMs: 3000 });
    const refused = await checks.check({}).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(refused?.code).toBe(error() instanceof ConnectError ? Code.NotFound : Code.InvalidArgument);
    expect(refused?.rawMessage).toMatch(/\ufffd/);
    expect(refused!.rawMessage).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });
});

