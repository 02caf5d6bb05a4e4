import type { SharedSlots } from '../cluster';
import { HttpError } from '../http-errors';

/** What a client refused a stream should wait before trying again (a stream ends only when its run does, or its client leaves). */
export const streamRetryAfterSeconds = 10;

/**
 * Event streams open per user: each holds a `WatchExecution` call and costs CPU for every
 * line of its run, so one token could open hundreds. A stream takes a slot while it is open
 * and gives it back when it ends, however it ends.
 *
 * Counted in this process and, with `shared` (the gateway's other processes, through the
 * cluster's primary), over all of them: GATEWAY_WORKERS processes hold the limit together.
 * Not in the shared rate-limit table: that table counts events in windows, and a count of
 * open streams kept there would outlive a process that died with streams open. So separate
 * gateways (replicas on other machines) each hold their own.
 */
export class StreamSlots {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly limits: { user: number; admin: number },
    private readonly shared?: SharedSlots,
  ) {}

  /** Streams `userId` holds now in this process. */
  held(userId: string): number {
    return this.open.get(userId) ?? 0;
  }

  /**
   * Takes a slot for `userId` (ADMIN and above: the admin limit) and resolves to what gives
   * it back (once, however often called); 429 `rate_limited` when the user holds them all.
   */
  async take(userId: string, admin: boolean): Promise<() => void> {
    const max = admin ? this.limits.admin : this.limits.user;
    if (this.held(userId) >= max) throw tooMany(max);
    // Counted here before the primary is asked: this process's own takes meanwhile see it.
    this.open.set(userId, this.held(userId) + 1);
    const giveBackHere = () => {
      const left = this.held(userId) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
    };
    const shared = this.shared ? await this.shared.take(userId, max) : undefined;
    if (shared && !shared.granted) {
      giveBackHere();
      throw tooMany(max);
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      giveBackHere();
      shared?.release();
    };
  }
}

function tooMany(max: number): HttpError {
  return new HttpError(
    429,
    'rate_limited',
    `Too many open event streams (at most ${max} per user); close one, or try again later`,
    { retry_after: streamRetryAfterSeconds },
    { 'Retry-After': String(streamRetryAfterSeconds) },
  );
}
