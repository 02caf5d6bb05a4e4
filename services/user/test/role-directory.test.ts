import { RoleDirectory } from '../src/domain/role-directory';

/** A Keycloak whose role members can be changed, and which can stop answering. */
function fakeKeycloak() {
  const members: Record<string, string[]> = { ADMIN: ['a1'], SUPERADMIN: ['s1'] };
  const state = { down: false, calls: 0 };
  return {
    members,
    state,
    client: {
      async roleHolders(names: readonly string[]) {
        state.calls++;
        if (state.down) throw new TypeError('fetch failed');
        return new Map(names.map((name) => [name, new Set(members[name])]));
      },
      async getUserRealmRoles(id: string) {
        if (state.down) throw new TypeError('fetch failed');
        return Object.keys(members)
          .filter((name) => members[name]!.includes(id))
          .map((name) => ({ id: name, name }));
      },
    },
  };
}

describe('RoleDirectory', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => {
    clock = 1_000_000;
  });

  it('reads the holders once per two seconds', async () => {
    const kc = fakeKeycloak();
    const roles = new RoleDirectory(kc.client, { now });
    expect(await roles.roleOf('a1')).toBe('ADMIN');
    expect(await roles.roleOf('s1')).toBe('SUPERADMIN');
    expect(await roles.roleOf('u1')).toBe('USER');
    expect(kc.state.calls).toBe(1);
    kc.members.ADMIN = ['u1'];
    clock += 2001;
    expect(await roles.roleOf('u1')).toBe('ADMIN');
    expect(kc.state.calls).toBe(2);
  });

  it('answers with the last holders read while Keycloak does not answer, and asks it again every two seconds', async () => {
    const kc = fakeKeycloak();
    const warnings: string[] = [];
    const logger = { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined } as never;
    const roles = new RoleDirectory(kc.client, { now, logger });
    expect(await roles.roleOf('a1')).toBe('ADMIN');
    kc.state.down = true;
    clock += 60_000;
    expect(await roles.roleOf('a1')).toBe('ADMIN');
    expect(kc.state.calls).toBe(2);
    // Not asked again within two seconds of the failure.
    clock += 1000;
    expect(await roles.roleOf('s1')).toBe('SUPERADMIN');
    expect(kc.state.calls).toBe(2);
    clock += 1500;
    expect(await roles.roleOf('s1')).toBe('SUPERADMIN');
    expect(kc.state.calls).toBe(3);
    // One warning for the whole outage.
    expect(warnings).toHaveLength(1);
    // Back: read afresh.
    kc.state.down = false;
    kc.members.ADMIN = [];
    clock += 2001;
    expect(await roles.roleOf('a1')).toBe('USER');
  });

  it('fails once the last read is older than the limit, or when nothing was read yet', async () => {
    const kc = fakeKeycloak();
    kc.state.down = true;
    const roles = new RoleDirectory(kc.client, { now, staleMs: 10_000 });
    await expect(roles.roleOf('a1')).rejects.toThrow('fetch failed');
    kc.state.down = false;
    expect(await roles.roleOf('a1')).toBe('ADMIN');
    kc.state.down = true;
    clock += 9_000;
    expect(await roles.roleOf('a1')).toBe('ADMIN');
    clock += 2_000;
    await expect(roles.roleOf('a1')).rejects.toThrow('fetch failed');
  });

  it('does not stand in after a change made through this service', async () => {
    const kc = fakeKeycloak();
    const roles = new RoleDirectory(kc.client, { now });
    await roles.roleOf('a1');
    roles.invalidate();
    kc.state.down = true;
    await expect(roles.roleOf('a1')).rejects.toThrow('fetch failed');
  });
});
