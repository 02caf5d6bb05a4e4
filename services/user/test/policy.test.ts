import { PermissionDenied } from '@gef/common';
import { assertMayDeleteSelf, assertMayGrant, assertMayManage, canListUsers, canSeeUser, type Actor } from '../src/domain/policy';

const user: Actor = { userId: 'u1', role: 'USER' };
const admin: Actor = { userId: 'a1', role: 'ADMIN' };
const superadmin: Actor = { userId: 's1', role: 'SUPERADMIN' };

describe('the role table (CONTRACT §3)', () => {
  it('lets everyone see themselves, admins see USERs, superadmins all', () => {
    expect(canSeeUser(user, 'u1', 'USER')).toBe(true);
    expect(canSeeUser(user, 'u2', 'USER')).toBe(false);
    expect(canSeeUser(undefined, 'u2', 'USER')).toBe(false);
    expect(canSeeUser(admin, 'u2', 'USER')).toBe(true);
    expect(canSeeUser(admin, 'a2', 'ADMIN')).toBe(false);
    expect(canSeeUser(admin, 's2', 'SUPERADMIN')).toBe(false);
    expect(canSeeUser(superadmin, 'a2', 'ADMIN')).toBe(true);
  });

  it('lets only ADMIN+ list users', () => {
    expect(canListUsers(undefined)).toBe(false);
    expect(canListUsers(user)).toBe(false);
    expect(canListUsers(admin)).toBe(true);
    expect(canListUsers(superadmin)).toBe(true);
  });

  it('lets only a SUPERADMIN grant roles above USER', () => {
    expect(() => assertMayGrant(undefined, 'USER')).not.toThrow();
    expect(() => assertMayGrant(undefined, 'ADMIN')).toThrow(PermissionDenied);
    expect(() => assertMayGrant(user, 'ADMIN')).toThrow(PermissionDenied);
    expect(() => assertMayGrant(admin, 'ADMIN')).toThrow(PermissionDenied);
    expect(() => assertMayGrant(admin, 'SUPERADMIN')).toThrow(PermissionDenied);
    expect(() => assertMayGrant(superadmin, 'SUPERADMIN')).not.toThrow();
  });

  it('lets ADMIN manage USERs only, SUPERADMIN everyone', () => {
    expect(() => assertMayManage(admin, 'u2', 'USER')).not.toThrow();
    expect(() => assertMayManage(admin, 'a2', 'ADMIN')).toThrow(PermissionDenied);
    expect(() => assertMayManage(user, 'u2', 'USER')).toThrow(PermissionDenied);
    expect(() => assertMayManage(superadmin, 'a2', 'ADMIN')).not.toThrow();
  });

  it('lets only USERs delete themselves', () => {
    expect(() => assertMayDeleteSelf(user)).not.toThrow();
    expect(() => assertMayDeleteSelf(admin)).toThrow(PermissionDenied);
    expect(() => assertMayDeleteSelf(superadmin)).toThrow(PermissionDenied);
  });
});
