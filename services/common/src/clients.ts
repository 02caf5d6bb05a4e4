import { createHash } from 'node:crypto';
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import type { DescService } from '@bufbuild/protobuf';
import { rpcRecursionLimit } from './json-depth';
import { showServiceKey } from './service-keys';

const transports = new Map<string, Transport>();

/** How long one call (one try of it, when retried) may take by default. */
const callTimeoutMs = 30_000;

export interface TransportOptions {
  /**
   * Retry unary calls answered Unavailable (the service, or its database, is away; the call
   * changed nothing) with a doubling backoff for up to this long. Only for callers whose
   * calls are idempotent (the runner's).
   */
  retryUnavailableMs?: number;
  /** How long one call, or one try of a retried call, may take (default 30 s). */
  timeoutMs?: number;
  /** The key shown on every request (`service-keys.ts`): the services refuse requests without one. */
  serviceKey?: string;
}

/** Waits `ms`, or until `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Retries a unary call while it fails with Unavailable, 100 ms doubling up to 2 s, until
 * `budgetMs` is spent or the call is aborted (at once, also while waiting to retry). Each
 * try has `tryTimeoutMs` (a try that takes longer fails with DeadlineExceeded, not retried):
 * the call's own deadline, set before any interceptor runs, spans the tries and the waits,
 * so the transport gives it the budget and one try more.
 */
export function retryUnavailable(budgetMs: number, tryTimeoutMs = callTimeoutMs): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const deadline = Date.now() + budgetMs;
    let delay = 100;
    for (;;) {
      const tryTimeout = AbortSignal.timeout(tryTimeoutMs);
      try {
        return await next({ ...req, signal: AbortSignal.any([req.signal, tryTimeout]) });
      } catch (err) {
        if (tryTimeout.aborted && !req.signal.aborted) throw new ConnectError(`no answer within ${tryTimeoutMs} ms`, Code.DeadlineExceeded);
        if (ConnectError.from(err).code !== Code.Unavailable || req.signal.aborted || Date.now() + delay > deadline) throw err;
        await pause(delay, req.signal);
        if (req.signal.aborted) throw err;
        delay = Math.min(delay * 2, 2000);
      }
    }
  };
}

/** One HTTP/2 transport per base URL (and options) per process, reused by every client. */
export function transportFor(baseUrl: string, options: TransportOptions = {}): Transport {
  const timeoutMs = options.timeoutMs ?? callTimeoutMs;
  // The key's digest, not the key, names the transport: no secret kept as a map key.
  const key = `${baseUrl} ${options.retryUnavailableMs ?? 0} ${timeoutMs} ${options.serviceKey ? createHash('sha256').update(options.serviceKey).digest('hex') : ''}`;
  let transport = transports.get(key);
  if (!transport) {
    transport = createGrpcTransport({
      baseUrl,
      pingIntervalMs: 10_000,
      pingIdleConnection: true,
      idleConnectionTimeoutMs: 60_000,
      defaultTimeoutMs: timeoutMs + (options.retryUnavailableMs ?? 0),
      interceptors: [
        ...(options.serviceKey ? [showServiceKey(options.serviceKey)] : []),
        ...(options.retryUnavailableMs ? [retryUnavailable(options.retryUnavailableMs, timeoutMs)] : []),
      ],
      // Answers carrying params and results stored deeper than protobuf-es decodes by default.
      binaryOptions: { recursionLimit: rpcRecursionLimit },
    });
    transports.set(key, transport);
  }
  return transport;
}

/** A typed client of another service. */
export function serviceClient<S extends DescService>(service: S, baseUrl: string, options: TransportOptions = {}): Client<S> {
  return createClient(service, transportFor(baseUrl, options));
}
