import { HttpError } from '../http-errors';

/** What a client refused a stream should wait before trying again (a stream ends only when its run does, or its client leaves). */
export const streamRetryAfterSeconds = 10;

/**
 * Event streams open in this process, per user: each holds a `WatchExecution` call and
 * costs CPU for every line of its run, so one token could open hundreds. A stream takes a
 * slot while it is open and gives it back when it ends, however it ends.
 *
 * Counted per process, not in the shared rate-limit table: that table counts events in
 * windows, and a count of open streams kept there would outlive a process that died with
 * streams open. So with several gateway processes (GATEWAY_WORKERS, replicas) a user may
 * hold the limit in each.
 */
export class StreamSlots {
  private readonly open = new Map<string, number>();

  constructor(private readonly limits: { user: number; admin: number }) {}

  /** Streams `userId` holds now. */
  held(userId: string): number {
    return this.open.get(userId) ?? 0;
  }

  /**
   * Takes a slot for `userId` (ADMIN and above: the admin limit) and returns what gives it
   * back (once, however often called); 429 `rate_limited` when the user holds them all.
   */
  take(userId: string, admin: boolean): () => void {
    const max = admin ? this.limits.admin : this.limits.user;
    const held = this.held(userId);
    if (held >= max) {
      throw new HttpError(
        429,
        'rate_limited',
        `Too many open event streams (at most ${max} per user); close one, or try again later`,
        { retry_after: streamRetryAfterSeconds },
        { 'Retry-After': String(streamRetryAfterSeconds) },
      );
    }
    this.open.set(userId, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = this.held(userId) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
    };
  }
}
