/** A user's brute-force state as Keycloak's admin API reports it. */
export interface BruteForceStatus {
  disabled: boolean;
  numFailures: number;
  /** Epoch milliseconds. */
  lastFailure: number;
  /**
   * Epoch seconds before which logins are refused (Keycloak 24 and later); a value beyond
   * any date (Java's `Long.MAX_VALUE`) for a permanent lockout.
   */
  failedLoginNotBefore?: number;
}

/** The realm's brute-force settings. */
export interface BruteForceSettings {
  waitIncrementSeconds: number;
  maxFailureWaitSeconds: number;
  failureFactor: number;
}

/** Epoch seconds past which a lock counts as permanent (the year 5138). */
const permanentAfterSeconds = 1e11;

/**
 * Whole minutes until a locked account may log in again (at least 1), or undefined when
 * the lock has no end (a permanent lockout: an administrator must clear it). From the
 * lock's own end when Keycloak reports it; otherwise estimated from the realm's settings as
 * Keycloak computes a lock: `waitIncrementSeconds` per `failureFactor` failures, at most
 * `maxFailureWaitSeconds`.
 */
export function lockoutMinutesRemaining(status: BruteForceStatus, settings: () => BruteForceSettings | undefined, now = Date.now()): number | undefined {
  let endMs: number;
  const notBefore = status.failedLoginNotBefore;
  if (typeof notBefore === 'number' && Number.isFinite(notBefore) && notBefore > 0) {
    if (notBefore >= permanentAfterSeconds) return undefined;
    endMs = notBefore * 1000;
  } else {
    const s = settings() ?? { waitIncrementSeconds: 900, maxFailureWaitSeconds: 900, failureFactor: 5 };
    const steps = Math.max(1, Math.floor(status.numFailures / Math.max(1, s.failureFactor)));
    endMs = status.lastFailure + Math.min(s.waitIncrementSeconds * steps, s.maxFailureWaitSeconds) * 1000;
  }
  return Math.max(1, Math.ceil((endMs - now) / 60_000));
}
