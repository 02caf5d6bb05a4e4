import { AnnouncedRevocations } from '../src/revocations/announced-revocations';
import type { RevocationRecord } from '../src/revocations/revocation-hub';

const revocation = (id: number, expiresAt: number): RevocationRecord => ({
  id,
  userId: 'u',
  sessionId: null,
  notBefore: new Date(0),
  expiresAt: new Date(expiresAt),
});

describe('AnnouncedRevocations', () => {
  it('sends each revocation once, and again when its expiry moves', () => {
    const announced = new AnnouncedRevocations();
    expect(announced.take(revocation(1, 1000))).toBe(true);
    expect(announced.take(revocation(1, 1000))).toBe(false);
    expect(announced.take(revocation(1, 5000))).toBe(true);
    expect(announced.take(revocation(2, 1000))).toBe(true);
  });

  it('forgets the expired ones, so a watcher open for long holds only those in force', () => {
    const announced = new AnnouncedRevocations();
    for (let id = 0; id < 10_000; id += 1) announced.take(revocation(id, 1000 + id));
    announced.take(revocation(99_999, 50_000));
    announced.forgetExpired(20_000);
    expect(announced.size).toBe(1);
    // One still in force is still known as sent.
    expect(announced.take(revocation(99_999, 50_000))).toBe(false);
  });
});
