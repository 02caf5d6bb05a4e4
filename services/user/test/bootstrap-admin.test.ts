/**
 * The first SUPERADMIN against a real Keycloak (and PostgreSQL): made only while the realm
 * has no SUPERADMIN; once one exists, operators' changes to the bootstrap account stand.
 * The tests run in order, each from the realm the one before left.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase, unitOfWork } from '@gef/common/orm';
import { ensureSuperAdmin } from '../src/domain/bootstrap-admin';
import { entities } from '../src/entities';
import { KeycloakAdminClient, type KeycloakRole } from '../src/keycloak/admin-client';
import { migrations } from '../src/migrations';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { startTestKeycloak, type TestKeycloak } from './support/test-keycloak';

jest.setTimeout(300_000);

const account = { email: 'Bootstrap-Admin@Example.org', password: 'Bootstrap-Passw0rd!' };
const email = account.email.toLowerCase();

let kc: TestKeycloak;
let orm: MikroORM;
let keycloak: KeycloakAdminClient;
/** Warnings logged by ensureSuperAdmin. */
let warnings: string[];
const logger = {
  debug: () => undefined,
  info: () => undefined,
  error: () => undefined,
  warn: (_: unknown, msg?: string) => void warnings.push(msg ?? String(_)),
} as never;

beforeAll(async () => {
  kc = await startTestKeycloak();
  orm = await openDatabase({ url: kc.databaseUrl, entities, migrations, logger: createLogger('user-test', 'silent') });
  keycloak = new KeycloakAdminClient(kc.settings);
});

afterAll(async () => {
  await orm?.close();
  await kc?.stop();
});

beforeEach(() => {
  warnings = [];
});

/** Two replicas starting at once. */
const start = async () => {
  const [a, b] = await Promise.all([ensureSuperAdmin(orm, keycloak, account, logger), ensureSuperAdmin(orm, keycloak, account, logger)]);
  expect(a).toBe(b);
  return a;
};
const superadminRole = () => kc.console<KeycloakRole>('GET', '/roles/SUPERADMIN');
const holdsSuperAdmin = async (id: string) =>
  (await kc.console<KeycloakRole[]>('GET', `/users/${id}/role-mappings/realm/composite`)).some((r) => r.name === 'SUPERADMIN');
const accounts = () => kc.console<{ id: string }[]>('GET', `/users?email=${encodeURIComponent(email)}&exact=true`);
const profileOf = (id: string) => unitOfWork(orm, (em) => new UserProfileRepository(em).findById(id));

let bootstrapId: string;
let otherId: string;

describe('ensureSuperAdmin', () => {
  it('on first start (no SUPERADMIN in the realm) creates the account with its password, SUPERADMIN and a profile, once', async () => {
    expect(await keycloak.roleHolders(['SUPERADMIN'])).toEqual(new Map([['SUPERADMIN', new Set()]]));
    bootstrapId = (await start())!;
    expect(await accounts()).toEqual([expect.objectContaining({ id: bootstrapId })]);
    expect(await holdsSuperAdmin(bootstrapId)).toBe(true);
    expect((await kc.login(email, account.password)).sub).toBe(bootstrapId);
    expect(await profileOf(bootstrapId)).toMatchObject({ email, name: 'Administrator' });
    expect(warnings).toEqual([]);
  });

  it('leaves a demoted bootstrap account demoted while another SUPERADMIN exists', async () => {
    otherId = await kc.createUser('other-superadmin@example.org', 'Other-Passw0rd!x');
    await kc.console('POST', `/users/${otherId}/role-mappings/realm`, [await superadminRole()]);
    await kc.console('DELETE', `/users/${bootstrapId}/role-mappings/realm`, [await superadminRole()]);

    expect(await start()).toBe(bootstrapId);
    expect(await holdsSuperAdmin(bootstrapId)).toBe(false);
  });

  it('gives a demoted account without a profile its profile back, and not its role', async () => {
    await orm.em.getConnection().execute('delete from user_profile where id = ?', [bootstrapId]);
    expect(await start()).toBe(bootstrapId);
    expect(await profileOf(bootstrapId)).toMatchObject({ email });
    expect(await holdsSuperAdmin(bootstrapId)).toBe(false);
  });

  it('does not re-create a deleted bootstrap account while another SUPERADMIN exists, directly or through a group only', async () => {
    await kc.console('DELETE', `/users/${bootstrapId}`);
    expect(await start()).toBeUndefined();
    expect(await accounts()).toEqual([]);

    // The other SUPERADMIN holds the role through a group alone: still a SUPERADMIN.
    await kc.console('POST', '/groups', { name: 'superadmins' });
    const group = (await kc.console<{ id: string; name: string }[]>('GET', '/groups?search=superadmins&exact=true')).find((g) => g.name === 'superadmins')!.id;
    await kc.console('POST', `/groups/${group}/role-mappings/realm`, [await superadminRole()]);
    await kc.console('PUT', `/users/${otherId}/groups/${group}`);
    await kc.console('DELETE', `/users/${otherId}/role-mappings/realm`, [await superadminRole()]);
    expect(await start()).toBeUndefined();
    expect(await accounts()).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('with no SUPERADMIN left, creates the bootstrap account again (the way back in) and says so at warn', async () => {
    const group = (await kc.console<{ id: string; name: string }[]>('GET', '/groups?search=superadmins&exact=true')).find((g) => g.name === 'superadmins')!.id;
    await kc.console('DELETE', `/users/${otherId}/groups/${group}`);
    expect(await holdsSuperAdmin(otherId)).toBe(false);

    const id = (await start())!;
    expect(id).not.toBe(bootstrapId);
    expect(await accounts()).toEqual([expect.objectContaining({ id })]);
    expect(await holdsSuperAdmin(id)).toBe(true);
    expect((await kc.login(email, account.password)).sub).toBe(id);
    // The profile left by the deleted login gives way to the new one's.
    expect(await profileOf(id)).toMatchObject({ email });
    expect(await profileOf(bootstrapId)).toBeNull();
    expect(warnings.some((w) => /no SUPERADMIN left/.test(w))).toBe(true);
  });

  it('grants SUPERADMIN again to a bootstrap account that exists when no SUPERADMIN is left', async () => {
    const id = (await accounts())[0]!.id;
    await kc.console('DELETE', `/users/${id}/role-mappings/realm`, [await superadminRole()]);
    expect(await start()).toBe(id);
    expect(await holdsSuperAdmin(id)).toBe(true);
    expect(warnings.some((w) => /no SUPERADMIN left/.test(w))).toBe(true);
  });

  it("gives a login someone else registered at the address SUPERADMIN only as the operators' account: their password, its sessions ended, its tokens refused", async () => {
    // The bootstrap account deleted, and its address registered by anyone.
    await kc.console('DELETE', `/users/${(await accounts())[0]!.id}`);
    const squatter = await kc.createUser(email, 'Squatter-Passw0rd!1');
    await kc.login(email, 'Squatter-Passw0rd!1');
    expect((await kc.console<unknown[]>('GET', `/users/${squatter}/sessions`)).length).toBeGreaterThan(0);
    const revoked: string[] = [];
    expect(await ensureSuperAdmin(orm, keycloak, account, logger, async (id) => void revoked.push(id))).toBe(squatter);
    expect(await holdsSuperAdmin(squatter)).toBe(true);
    expect(revoked).toEqual([squatter]);
    expect(await kc.console<unknown[]>('GET', `/users/${squatter}/sessions`)).toEqual([]);
    await expect(kc.login(email, 'Squatter-Passw0rd!1')).rejects.toThrow();
    expect((await kc.login(email, account.password)).sub).toBe(squatter);
  });
});
