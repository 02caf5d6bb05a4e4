import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import { user } from '@gef/protos';
import { UserServiceNotices } from '../src/users/user-service-notices';

/** A user service answering GetUser `me` from a table of opt-ins, counting the calls. */
function fakeUsers(optIns: Map<string, boolean | 'down'>) {
  const calls: string[] = [];
  const client: Pick<Client<typeof user.UserService>, 'getUser'> = {
    getUser: async (req) => {
      const id = req.caller?.userId ?? '';
      calls.push(`${req.idOrEmail} as ${id}`);
      await new Promise((r) => setTimeout(r, 5));
      const wants = optIns.get(id);
      if (wants === 'down') throw new ConnectError('unavailable', Code.Unavailable);
      if (wants === undefined) throw new ConnectError('not found', Code.NotFound);
      return create(user.GetUserResponseSchema, { user: create(user.UserSchema, { id, emailNotificationsEnabled: wants }) });
    },
  };
  return { client, calls };
}

describe('UserServiceNotices', () => {
  it('reads the owner\'s opt-in as the owner, once for a burst of runs, until the entry expires', async () => {
    let now = 1_000;
    const optIns = new Map<string, boolean | 'down'>([['u1', false], ['u2', true]]);
    const { client, calls } = fakeUsers(optIns);
    const notices = new UserServiceNotices(client, 30_000, 100, () => now);
    const burst = await Promise.all(Array.from({ length: 20 }, () => notices.wantsMail('u1')));
    expect(new Set(burst)).toEqual(new Set([false]));
    expect(await notices.wantsMail('u2')).toBe(true);
    expect(calls).toEqual(['me as u1', 'me as u2']);

    optIns.set('u1', true);
    now += 29_000;
    expect(await notices.wantsMail('u1')).toBe(false);
    now += 2_000;
    expect(await notices.wantsMail('u1')).toBe(true);
    expect(calls).toHaveLength(3);
  });

  it('answers true (ask at the end) when the user service cannot tell, and asks again next time', async () => {
    const optIns = new Map<string, boolean | 'down'>([['u1', 'down']]);
    const { client, calls } = fakeUsers(optIns);
    const notices = new UserServiceNotices(client);
    expect(await notices.wantsMail('u1')).toBe(true);
    expect(await notices.wantsMail('gone')).toBe(true);
    optIns.set('u1', false);
    expect(await notices.wantsMail('u1')).toBe(false);
    expect(calls).toEqual(['me as u1', 'me as gone', 'me as u1']);
  });

  it('keeps at most maxEntries owners', async () => {
    const optIns = new Map<string, boolean | 'down'>(Array.from({ length: 5 }, (_, i) => [`u${i}`, false] as [string, boolean]));
    const { client, calls } = fakeUsers(optIns);
    const notices = new UserServiceNotices(client, 30_000, 3);
    for (let i = 0; i < 5; i++) await notices.wantsMail(`u${i}`);
    await notices.wantsMail('u4');
    await notices.wantsMail('u0');
    // u4 was kept; u0 had been dropped for the newer ones and is asked again.
    expect(calls.slice(5)).toEqual(['me as u0']);
  });
});
