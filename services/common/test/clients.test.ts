import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { retryUnavailable } from '../src/clients';

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
