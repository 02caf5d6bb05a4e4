import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { Logger } from '@gef/common';
import type { CacheSiblings } from './cache/read-cache';
import { shareInFlight } from './share-in-flight';

/**
 * The gateway as several processes sharing one port (Node's cluster): a primary that only
 * supervises, and workers that each serve requests as a single gateway would. A gateway
 * keeps nothing between requests that another process could not have (rate-limit counters
 * sit in its database, each worker follows revocations and changes itself), so workers are
 * replicas on one machine, as more machines would be behind a load balancer.
 */

/** Messages between the primary and its workers. */
const METRICS_REQUEST = 'gef:metrics-request';
const METRICS_REPLY = 'gef:metrics-reply';
const METRICS_COLLECT = 'gef:metrics-collect';
const METRICS_COLLECTED = 'gef:metrics-collected';
const SHUTDOWN = 'gef:shutdown';
const INVALIDATE = 'gef:cache-invalidate';
const INVALIDATED = 'gef:cache-invalidated';
const SLOT_TAKE = 'gef:slot-take';
const SLOT_TAKEN = 'gef:slot-taken';
const SLOT_RELEASE = 'gef:slot-release';

/** A worker asks the primary for the cluster's metrics; the primary answers with the text. */
type MetricsRequest = { type: typeof METRICS_REQUEST; id: string };
type MetricsReply = { type: typeof METRICS_REPLY; id: string; text?: string; error?: string };
/** The primary collects each serving worker's metrics (prom-client's JSON form). */
type MetricsCollect = { type: typeof METRICS_COLLECT; id: string };
type MetricsCollected = { type: typeof METRICS_COLLECTED; id: string; metrics?: MetricObjectWithValues<MetricValue<string>>[]; error?: string };
/**
 * A worker asks the primary to have every other worker drop keys of a cache (a change made
 * through it); the primary passes it on to each, and answers once each has answered.
 */
type Invalidate = { type: typeof INVALIDATE; id: string; cache: string; keys: string[] };
type Invalidated = { type: typeof INVALIDATED; id: string };
/**
 * A worker asks the primary for one of a key's slots (e.g. a user's event streams), of
 * which the whole gateway holds at most `max`; the primary answers whether it is granted.
 * A granted slot is given back with a release, or when its worker ends.
 */
type SlotTake = { type: typeof SLOT_TAKE; id: string; key: string; max: number };
type SlotTaken = { type: typeof SLOT_TAKEN; id: string; granted: boolean };
type SlotRelease = { type: typeof SLOT_RELEASE; id: string };

/** How long the primary waits for each worker's metrics. */
const collectTimeoutMs = 5000;
/** How long the primary waits for the other workers to drop what a worker changed. */
const invalidateTimeoutMs = 1000;
/** How long a worker waits for the primary's answer to that (the primary's wait, and more). */
const invalidateAnswerTimeoutMs = 2000;
/** How long a worker waits for the primary to grant a slot before deciding on its own count. */
const slotAnswerTimeoutMs = 1000;

const isMessage = <T extends { type: string }>(message: unknown, type: T['type']): message is T =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

/** GATEWAY_WORKERS as a count: 0 is one per core the process may use. */
export function workerCount(setting: number, cores = os.availableParallelism()): number {
  return setting > 0 ? setting : Math.max(1, cores);
}

/** A question the primary put to some workers: those yet to answer, and the answers. */
interface Asking {
  pending: Set<number>;
  answers: unknown[];
  what: string;
  done: (err?: Error) => void;
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** How long workers may take to end after a shutdown began; then they are killed. */
  graceMs: number;
  /** A worker that ended this soon after its start (and after the first start) is restarted later and later. */
  quickExitMs?: number;
}

/**
 * Runs the primary: forks the workers, answers their requests for the cluster's metrics,
 * passes a worker's cache invalidations on to the others, keeps the count of slots
 * (`clusterSlots`) the workers hold together,
 * starts a worker again when one ends while serving (after 1 s, up to 30 s when they keep
 * ending at once), and ends with them. A worker that ends before every worker listened
 * ends the primary (the gateway did not start). On SIGTERM or SIGINT every worker is told
 * to shut down (a signal to the whole process group reaches them too; they shut down once),
 * and those still there after `graceMs` are killed.
 */
export function runPrimary({ workers, logger, graceMs, quickExitMs = 10_000 }: PrimaryOptions): void {
  const asking = new Map<string, Asking>();
  const startedAt = new Map<number, number>();
  /** Slots granted, by worker id: each take's id and its key. */
  const slots = new Map<number, Map<string, string>>();
  const slotsHeld = (key: string): number => {
    let held = 0;
    for (const byId of slots.values()) for (const k of byId.values()) if (k === key) held++;
    return held;
  };
  /** Workers that listen (they heed the shutdown message). */
  const serving = new Set<number>();
  let ready = false;
  let stopping = false;
  let failed = false;
  let delayMs = 1000;

  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
  const fork = (): void => {
    const worker = cluster.fork();
    startedAt.set(worker.id, Date.now());
    worker.once('listening', () => {
      serving.add(worker.id);
      if (!ready && serving.size === workers) {
        ready = true;
        logger.info({ workers }, 'gateway workers listening');
      }
    });
  };
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ why, workers: live().length }, 'stopping the gateway workers');
    for (const worker of live()) {
      // A serving worker is told (a signal to the whole group may have reached it already,
      // and a second signal ends a process at once); one still starting gets SIGTERM.
      if (serving.has(worker.id) && worker.isConnected()) worker.send({ type: SHUTDOWN });
      else worker.process.kill('SIGTERM');
    }
    setTimeout(() => {
      for (const worker of live()) worker.process.kill('SIGKILL');
    }, graceMs).unref();
    if (live().length === 0) process.exit(failed ? 1 : 0);
  };

  /**
   * Sends each of `targets` a message (`send(worker, id)`) and resolves with their answers
   * once each answered; rejects when one answers with an error, ends first, or `timeoutMs`
   * passes.
   */
  const ask = (targets: Worker[], send: (worker: Worker, id: string) => void, timeoutMs: number, what: string): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      const id = randomUUID();
      const entry: Asking = {
        pending: new Set(targets.map((w) => w.id)),
        answers: [],
        what,
        done: (err) => {
          clearTimeout(timer);
          asking.delete(id);
          if (err) reject(err);
          else resolve(entry.answers);
        },
      };
      const timer = setTimeout(() => entry.done(new Error(`workers did not answer (${what}) within ${timeoutMs} ms`)), timeoutMs);
      asking.set(id, entry);
      for (const worker of targets) send(worker, id);
      if (targets.length === 0) entry.done();
    });
  /** The workers that serve (listened, and still connected), but `except`. */
  const servingWorkers = (except?: Worker): Worker[] => live().filter((w) => w !== except && serving.has(w.id) && w.isConnected());

  /**
   * The sums of the serving workers' metrics. Only those: a worker still starting cannot
   * answer yet, and one that does not answer in time fails the whole (partial sums would
   * look like counters going back). Workers asking at once share one collection.
   */
  const collect = shareInFlight(async (): Promise<string> => {
    const answers = await ask(servingWorkers(), (w, id) => w.send({ type: METRICS_COLLECT, id } satisfies MetricsCollect), collectTimeoutMs, 'metrics');
    return AggregatorRegistry.aggregate(answers as MetricObjectWithValues<MetricValue<string>>[][]).metrics();
  });

  /**
   * Has every other serving worker drop what `from` changed, then tells `from`. A worker
   * still starting has cached nothing yet. One that does not answer in time is given up on
   * (its copies are dropped anyway by the change stream, moments later).
   */
  const invalidate = (from: Worker, message: Invalidate): void => {
    ask(servingWorkers(from), (w, id) => w.send({ type: INVALIDATE, id, cache: message.cache, keys: message.keys } satisfies Invalidate), invalidateTimeoutMs, 'cache invalidation')
      .catch((err: unknown) => logger.warn({ err, cache: message.cache }, 'not every gateway worker confirmed dropping a changed key'))
      .finally(() => {
        if (from.isConnected()) from.send({ type: INVALIDATED, id: message.id } satisfies Invalidated);
      });
  };

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage<MetricsCollected>(message, METRICS_COLLECTED) || isMessage<Invalidated>(message, INVALIDATED)) {
      const entry = asking.get(message.id);
      if (!entry || !entry.pending.delete(worker.id)) return;
      if (isMessage<MetricsCollected>(message, METRICS_COLLECTED)) {
        if (message.error !== undefined || !message.metrics) return entry.done(new Error(message.error ?? 'no metrics'));
        entry.answers.push(message.metrics);
      }
      if (entry.pending.size === 0) entry.done();
      return;
    }
    if (isMessage<Invalidate>(message, INVALIDATE)) return invalidate(worker, message);
    if (isMessage<SlotTake>(message, SLOT_TAKE)) {
      const granted = typeof message.key === 'string' && typeof message.max === 'number' && slotsHeld(message.key) < message.max;
      if (granted) {
        const byId = slots.get(worker.id) ?? new Map<string, string>();
        byId.set(message.id, message.key);
        slots.set(worker.id, byId);
      }
      if (worker.isConnected()) worker.send({ type: SLOT_TAKEN, id: message.id, granted } satisfies SlotTaken);
      return;
    }
    if (isMessage<SlotRelease>(message, SLOT_RELEASE)) {
      // Only what was granted: a take the worker decided alone (no answer in time) was never counted.
      slots.get(worker.id)?.delete(message.id);
      return;
    }
    if (!isMessage<MetricsRequest>(message, METRICS_REQUEST)) return;
    collect().then(
      (text) => worker.isConnected() && worker.send({ type: METRICS_REPLY, id: message.id, text } satisfies MetricsReply),
      (err: unknown) => worker.isConnected() && worker.send({ type: METRICS_REPLY, id: message.id, error: String(err) } satisfies MetricsReply),
    );
  });
  cluster.on('exit', (worker, code, signal) => {
    // Its IPC channel may not have said it closed yet, and until it does the worker stays in
    // the round robin: a connection handed to it now would be lost.
    if (worker.isConnected()) worker.process.disconnect();
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    startedAt.delete(worker.id);
    serving.delete(worker.id);
    // Whatever it held ended with it.
    slots.delete(worker.id);
    for (const entry of asking.values()) if (entry.pending.has(worker.id)) entry.done(new Error(`a worker ended while it was asked (${entry.what})`));
    if (stopping) {
      logger.info({ pid: worker.process.pid, code, signal }, 'a gateway worker ended');
      // Ended by its shutdown, or by the SIGTERM of one still starting: as asked.
      if (code !== 0 && signal !== 'SIGTERM') failed = true;
      if (live().length === 0) process.exit(failed ? 1 : 0);
      return;
    }
    if (!ready) {
      logger.error({ pid: worker.process.pid, code, signal }, 'a gateway worker ended before the gateway started');
      failed = true;
      stop('a worker failed to start');
      return;
    }
    delayMs = lived < quickExitMs ? Math.min(30_000, delayMs * 2) : 1000;
    logger.error({ pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'a gateway worker ended; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        for (const worker of live()) worker.process.kill('SIGKILL');
        process.exit(1);
      }
      stop(signal);
    });
  }
  for (let i = 0; i < workers; i++) fork();
}

/** In a worker: sends the primary this worker's metrics when asked, and starts `shutdown` when it says so. */
export function joinCluster(registry: Registry, shutdown: () => void): void {
  process.on('message', (message: unknown) => {
    if (isMessage(message, SHUTDOWN)) shutdown();
    if (isMessage<MetricsCollect>(message, METRICS_COLLECT)) {
      const reply = (answer: Omit<MetricsCollected, 'type' | 'id'>) => process.send?.({ type: METRICS_COLLECTED, id: message.id, ...answer } satisfies MetricsCollected);
      registry.getMetricsAsJSON().then(
        (metrics) => reply({ metrics: metrics as MetricObjectWithValues<MetricValue<string>>[] }),
        (err: unknown) => reply({ error: String(err) }),
      );
    }
  });
}

/** In a worker: the metrics of every worker, aggregated by the primary (Prometheus text). */
export function clusterMetrics(timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID();
    const done = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    const onMessage = (message: unknown): void => {
      if (!isMessage<MetricsReply>(message, METRICS_REPLY) || message.id !== id) return;
      done();
      if (message.text !== undefined) resolve(message.text);
      else reject(new Error(message.error ?? 'no metrics'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error('the primary did not answer with the metrics'));
    }, timeoutMs);
    if (!process.send) {
      done();
      reject(new Error('no primary to ask for the metrics'));
      return;
    }
    process.on('message', onMessage);
    process.send({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
  });
}

/**
 * In a worker: the other workers' read caches, reached through the primary. Asking them
 * to drop keys resolves once each did (or the primary gave up on one), so a client's next
 * request shows a change it made whichever worker it reaches; without a primary to ask
 * (it ended, and this worker with it), at once.
 */
export function clusterCacheSiblings(timeoutMs = invalidateAnswerTimeoutMs): CacheSiblings {
  const listeners = new Set<(cache: string, keys: string[]) => void>();
  const waiting = new Map<string, () => void>();
  process.on('message', (message: unknown) => {
    if (isMessage<Invalidated>(message, INVALIDATED)) {
      waiting.get(message.id)?.();
      return;
    }
    if (!isMessage<Invalidate>(message, INVALIDATE)) return;
    for (const listener of listeners) listener(message.cache, message.keys);
    if (process.connected) process.send?.({ type: INVALIDATED, id: message.id } satisfies Invalidated);
  });
  return {
    onInvalidate: (listener) => {
      listeners.add(listener);
    },
    invalidate: (cache, keys) =>
      new Promise<void>((resolve) => {
        if (!process.send || !process.connected) return resolve();
        const id = randomUUID();
        const done = (): void => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        waiting.set(id, done);
        process.send({ type: INVALIDATE, id, cache, keys } satisfies Invalidate);
      }),
  };
}

/** Slots of a key shared by every process of the gateway (e.g. a user's open event streams). */
export interface SharedSlots {
  /**
   * Takes one of `key`'s slots, of which all processes together hold at most `max`: whether
   * it was granted, and what gives it back (call it once the slot is done with).
   */
  take(key: string, max: number): Promise<{ granted: boolean; release: () => void }>;
}

/**
 * In a worker: slots counted by the primary over every worker, so a limit holds for the
 * whole gateway and not for each of its processes. A slot of a worker that ends is given
 * back with it. Without a primary to ask, or when it does not answer within `timeoutMs`,
 * a take is granted (the caller's count in its own process still applies), and was never
 * counted by the primary: its release changes nothing there.
 */
export function clusterSlots(timeoutMs = slotAnswerTimeoutMs): SharedSlots {
  const waiting = new Map<string, (granted: boolean) => void>();
  process.on('message', (message: unknown) => {
    if (isMessage<SlotTaken>(message, SLOT_TAKEN)) waiting.get(message.id)?.(message.granted === true);
  });
  const nothing = (): void => undefined;
  return {
    take: (key, max) =>
      new Promise((resolve) => {
        if (!process.send || !process.connected) return resolve({ granted: true, release: nothing });
        const id = randomUUID();
        const release = (): void => {
          if (process.send && process.connected) process.send({ type: SLOT_RELEASE, id } satisfies SlotRelease);
        };
        const done = (granted: boolean): void => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve({ granted, release: granted ? release : nothing });
        };
        const timer = setTimeout(() => done(true), timeoutMs);
        waiting.set(id, done);
        process.send({ type: SLOT_TAKE, id, key, max } satisfies SlotTake);
      }),
  };
}
