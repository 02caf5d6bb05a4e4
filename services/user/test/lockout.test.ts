import { lockoutMinutesRemaining, type BruteForceSettings } from '../src/domain/lockout';

const now = Date.UTC(2026, 10, 30, 12, 0, 0);
const noSettings = () => undefined;
const settings = (s: BruteForceSettings) => () => s;

describe('lockoutMinutesRemaining', () => {
  it('counts from the end Keycloak reports, whatever the realm settings say', () => {
    const status = { disabled: true, numFailures: 10, lastFailure: now - 60_000, failedLoginNotBefore: now / 1000 + 45 * 60 };
    expect(lockoutMinutesRemaining(status, settings({ waitIncrementSeconds: 60, maxFailureWaitSeconds: 60, failureFactor: 5 }), now)).toBe(45);
    expect(lockoutMinutesRemaining({ ...status, failedLoginNotBefore: now / 1000 + 61 }, noSettings, now)).toBe(2);
    // Ended a moment ago but still reported as locked: at least a minute.
    expect(lockoutMinutesRemaining({ ...status, failedLoginNotBefore: now / 1000 - 5 }, noSettings, now)).toBe(1);
  });

  it('has no end for a permanent lockout', () => {
    // Java's Long.MAX_VALUE, as JSON.parse reads it.
    const status = JSON.parse('{"disabled":true,"numFailures":5,"lastFailure":1,"failedLoginNotBefore":9223372036854775807}');
    expect(lockoutMinutesRemaining(status, noSettings, now)).toBeUndefined();
  });

  it('without the end, estimates it as Keycloak computes it: one wait per failureFactor failures, capped', () => {
    const s = settings({ waitIncrementSeconds: 600, maxFailureWaitSeconds: 3600, failureFactor: 3 });
    expect(lockoutMinutesRemaining({ disabled: true, numFailures: 3, lastFailure: now }, s, now)).toBe(10);
    expect(lockoutMinutesRemaining({ disabled: true, numFailures: 7, lastFailure: now }, s, now)).toBe(20);
    expect(lockoutMinutesRemaining({ disabled: true, numFailures: 30, lastFailure: now }, s, now)).toBe(60);
    expect(lockoutMinutesRemaining({ disabled: true, numFailures: 5, lastFailure: now - 14 * 60_000 }, noSettings, now)).toBe(1);
  });
});
