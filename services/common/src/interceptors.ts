import { ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { GefError, toConnectError } from './errors';

/**
 * The server interceptor every service installs: domain errors become ConnectErrors with
 * their code; anything else is logged and sent as a bare Internal error.
 */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof GefError) && !(err instanceof ConnectError)) {
        logger.error({ err, procedure: req.method.name, service: req.service.typeName }, 'unhandled error in RPC');
      }
      throw toConnectError(err);
    }
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
