import { PermissionDenied, Unauthenticated } from '@gef/common';
import { assertMayChange, canSee, requireActor, type Actor } from '../src/domain/policy';

const owner: Actor = { userId: 'owner', role: 'USER' };
const other: Actor = { userId: 'other', role: 'USER' };
const admin: Actor = { userId: 'admin', role: 'ADMIN' };
const superadmin: Actor = { userId: 'root', role: 'SUPERADMIN' };
const privateScript = { userId: 'owner', public: false };
const publicScript = { userId: 'owner', public: true };

describe('script policy', () => {
  it('shows own and public scripts; ADMIN+ see all', () => {
    expect([owner, other, admin, superadmin].map((a) => canSee(a, privateScript))).toEqual([true, false, true, true]);
    expect([owner, other, admin, superadmin].map((a) => canSee(a, publicScript))).toEqual([true, true, true, true]);
  });

  it('lets the owner and ADMIN+ change a script, and refuses others with PermissionDenied', () => {
    for (const a of [owner, admin, superadmin]) expect(() => assertMayChange(a, publicScript)).not.toThrow();
    expect(() => assertMayChange(other, publicScript)).toThrow(PermissionDenied);
  });

  it('needs a caller', () => {
    expect(() => requireActor(undefined)).toThrow(Unauthenticated);
    expect(requireActor(owner)).toBe(owner);
  });
});
