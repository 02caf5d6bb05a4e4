import { ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { GefError, invalidInputMessage, isDeadlock, isDependencyUnavailable, toConnectError } from './errors';
import { describeError } from './logger';

/**
 * The server interceptor every service installs: domain errors become ConnectErrors with
 * their code; a value the database refuses as invalid input is logged as a warning and sent
 * as InvalidArgument; anything else is logged and sent as a bare Internal error.
 */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const translate = (err: unknown): ConnectError => {
      if (!(err instanceof GefError) && !(err instanceof ConnectError)) {
        if (isDeadlock(err)) {
          logger.error({ err: describeError(err), procedure: req.method.name, service: req.service.typeName }, 'deadlock in the database (statements taking locks in different orders)');
        } else if (isDependencyUnavailable(err)) {
          logger.warn({ err: describeError(err), procedure: req.method.name, service: req.service.typeName }, 'dependency unavailable');
        } else if (invalidInputMessage(err) !== undefined) {
          // Logged still: a value of the code's own, not the request's, would be a bug.
          logger.warn({ err: describeError(err), procedure: req.method.name, service: req.service.typeName }, 'the database refused a value of the request');
        } else {
          logger.error({ err, procedure: req.method.name, service: req.service.typeName }, 'unhandled error in RPC');
        }
      }
      return toConnectError(err);
    };
    let res;
    try {
      res = await next(req);
    } catch (err) {
      throw translate(err);
    }
    if (!res.stream) return res;
    // A streaming handler throws while its messages are read: translate those errors too.
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw translate(err);
        }
      })(),
    };
  };
}

/** Logs every call with its duration at debug level. */
export function loggingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    try {
      return await next(req);
    } finally {
      logger.debug({ procedure: `${req.service.typeName}/${req.method.name}`, ms: performance.now() - started }, 'rpc');
    }
  };
}
