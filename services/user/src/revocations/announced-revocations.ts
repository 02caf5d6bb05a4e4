import type { RevocationRecord } from './revocation-hub';

/**
 * The revocations one watcher has been sent, so each goes out once (and again when its
 * expiry moves). A revocation past its expiry no longer matters to any token, so it is
 * forgotten: a stream that stays open for months holds only those in force.
 */
export class AnnouncedRevocations {
  /** `id/expiresAt` → expiresAt in ms. */
  private readonly sent = new Map<string, number>();

  /** True when the revocation is new to this watcher (and now counted as sent). */
  take(revocation: RevocationRecord): boolean {
    const expiresAt = revocation.expiresAt.getTime();
    const key = `${revocation.id}/${expiresAt}`;
    if (this.sent.has(key)) return false;
    this.sent.set(key, expiresAt);
    return true;
  }

  /** Forgets those expired at `now`. */
  forgetExpired(now = Date.now()): void {
    for (const [key, expiresAt] of this.sent) if (expiresAt <= now) this.sent.delete(key);
  }

  get size(): number {
    return this.sent.size;
  }
}
