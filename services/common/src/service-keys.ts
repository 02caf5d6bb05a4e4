import { createHash, timingSafeEqual } from 'node:crypto';
import type { DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { health } from '@gef/protos';
import type { Logger } from 'pino';
import { z } from 'zod';
import { commaItems, type DevSecret } from './config';

/**
 * Who may call a service's RPCs. The services trust what a request says (its `caller`), so
 * only the platform's own parts may send requests at all, each showing a key in this header:
 * - the platform's key (`SERVICE_API_KEY`): the gateway and the services calling one
 *   another, every RPC;
 * - the runners' key (`RUNNER_API_KEY`): only the RPCs a runner makes (`runnerMethods`).
 * The health service answers anyone: it says nothing but up or down.
 * Each setting is a comma-separated list: the first key is sent, every one is accepted, so a
 * key is replaced without a moment when the parts disagree (add the new one second, then
 * first everywhere, then drop the old one).
 */
export const serviceKeyHeader = 'x-gef-service-key';

/** The keys a comma-separated setting lists, in order. */
export const keysOf = commaItems;

/** The key a part sends: the first its setting lists. */
export const keyToSend = (setting: string): string => keysOf(setting)[0]!;

const keyList = (fallback: string) =>
  z
    .string()
    .refine((value) => keysOf(value).length > 0, 'at least one key is needed')
    .refine((value) => keysOf(value).every((key) => key.length >= 16), 'each key must be at least 16 characters')
    .default(fallback);

const devServiceKey = 'gef-service-dev-key-not-for-production';
const devRunnerKey = 'gef-runner-dev-key-not-for-production';

/** The platform's key, for the gateway and the user, script and execution services. */
export const serviceKeyConfigShape = { SERVICE_API_KEY: keyList(devServiceKey) };
/** The runners' key, for the runners and the services they call (script, execution). */
export const runnerKeyConfigShape = { RUNNER_API_KEY: keyList(devRunnerKey) };
/** Production refuses to start with the development keys. */
export const serviceKeyDevSecret: DevSecret = { name: 'SERVICE_API_KEY', devValue: devServiceKey };
export const runnerKeyDevSecret: DevSecret = { name: 'RUNNER_API_KEY', devValue: devRunnerKey };

/** The keys a service accepts (settings as given: comma-separated lists): the platform's, and the runners' for `runner.methods`. */
export interface ServiceKeys {
  service: string;
  runner?: { keys: string; methods: readonly string[] };
}

const digest = (key: string): Buffer => createHash('sha256').update(key).digest();

/** Whether `shown` is one of `digests`, in time that does not depend on how much of it matched. */
function oneOf(shown: Buffer, digests: readonly Buffer[]): boolean {
  let found = false;
  for (const d of digests) found = timingSafeEqual(shown, d) || found;
  return found;
}

/**
 * The server interceptor that refuses requests without an accepted key (Unavailable), and
 * runners' requests for RPCs that are not theirs (PermissionDenied). `runner.methods`
 * are `<service type name>/<method name>`, as `gef.execution.v1.ExecutionService/ReportRunner`.
 */
export function serviceKeyInterceptor(keys: ServiceKeys, logger: Logger): Interceptor {
  const service = keysOf(keys.service).map(digest);
  const runner = keysOf(keys.runner?.keys ?? '').map(digest);
  const runnerMethods = new Set(keys.runner?.methods ?? []);
  let refusalsLogged = 0;
  return (next) => async (req) => {
    if (req.service.typeName === health.HealthService.typeName) return next(req);
    const shownKey = req.header.get(serviceKeyHeader);
    const procedure = `${req.service.typeName}/${req.method.name}`;
    if (shownKey) {
      const shown = digest(shownKey);
      if (oneOf(shown, service)) return next(req);
      if (oneOf(shown, runner)) {
        if (runnerMethods.has(procedure)) return next(req);
        throw new ConnectError(`${procedure} is not a runner's to call`, Code.PermissionDenied);
      }
    }
    // Said in the log, a few times: a part given the wrong key would otherwise only see its
    // calls fail.
    if (refusalsLogged < 10) {
      refusalsLogged++;
      logger.warn({ procedure, keyShown: Boolean(shownKey) }, 'refused an RPC without an accepted service key');
    }
    // Unavailable, not Unauthenticated: a caller without the key is a part of the platform
    // set up wrong (or of an earlier version, during an upgrade), not a client to log out. A
    // gateway answers its clients 503, and a runner waits and retries, as for a service away.
    throw new ConnectError('this service answers only callers showing an accepted service key', Code.Unavailable);
  };
}

/** The client interceptor that shows `key` on every request. */
export function showServiceKey(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set(serviceKeyHeader, key);
    return next(req);
  };
}

/** The procedure names (`<service type name>/<Method>`) of some of a service's methods. */
export function procedures<S extends DescService>(service: S, methods: readonly (keyof S['method'] & string)[]): string[] {
  return methods.map((m) => `${service.typeName}/${service.method[m]!.name}`);
}
