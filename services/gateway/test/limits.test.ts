/**
 * Who a per-client limit counts (`clientKey`): an IPv6 client by its /64, an IPv4 client
 * (however written) by its address; and how long a counter may still count.
 */
import type { Request } from 'express';
import { HttpError } from '../src/http-errors';
import { clientKey, counterLifetimeSeconds, enforceLimits, type Limits } from '../src/rate-limit/limits';
import { MemoryLimiter } from './support';

const from = (ip: string | undefined, remoteAddress?: string) => ({ ip, socket: { remoteAddress } }) as unknown as Request;
const key = (ip: string) => clientKey(from(ip));

const minute = { max: 1000, windowSeconds: 60 };
const limits = (overrides: Partial<Limits> = {}): Limits => ({
  login_client: minute,
  login_account: minute,
  refresh_client: minute,
  refresh_session: minute,
  register_client: minute,
  register_account: minute,
  recover_client: minute,
  recover_account: minute,
  run_account: minute,
  run_client: minute,
  upload_account: minute,
  upload_client: minute,
  ...overrides,
});

/** Whether a login from `ip` is let through by a limit of two logins per client. */
const login = (limiter: MemoryLimiter, ip: string) =>
  enforceLimits(limiter, limits({ login_client: { max: 2, windowSeconds: 60 } }), [{ name: 'login_client', key: clientKey(from(ip)) }]).then(
    () => true,
    (err: unknown) => {
      if (err instanceof HttpError && err.status === 429) return false;
      throw err;
    },
  );

describe('clientKey', () => {
  it('counts every address of one IPv6 /64 as one client, and each /64 apart', async () => {
    const limiter = new MemoryLimiter();
    expect(await login(limiter, '2001:db8:0:1::a')).toBe(true);
    expect(await login(limiter, '2001:db8:0:1:ffff:ffff:ffff:fffe')).toBe(true);
    expect(await login(limiter, '2001:db8:0:1:1234::5')).toBe(false);
    expect(await login(limiter, '2001:db8:0:2::a')).toBe(true);
    expect(await login(limiter, '2001:db8:1:1::a')).toBe(true);
  });

  it('writes an IPv6 client one way: `::` expanded, lower case, leading zeros and zone ids dropped', () => {
    const one = key('2001:db8:0:1::a');
    expect(one).toBe('2001:db8:0:1::/64');
    for (const same of ['2001:0DB8:0000:0001:0000:0000:0000:0001', '2001:db8::1:0:0:0:1', '2001:db8:0:1::1.2.3.4', '2001:db8:0:1::a%eth0']) {
      expect(key(same)).toBe(one);
    }
    expect(key('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(key('fe80::2%en1')).toBe('fe80:0:0:0::/64');
    expect(key('::1')).toBe('0:0:0:0::/64');
    expect(key('2001:db8::')).toBe('2001:db8:0:0::/64');
  });

  it('counts IPv4 clients, and IPv4-mapped IPv6 ones, per address', async () => {
    expect(key('10.0.0.1')).toBe('10.0.0.1');
    expect(key('10.0.0.2')).toBe('10.0.0.2');
    // However it is written (a dual-stack socket, a proxy), one IPv4 address is one client…
    expect(key('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(key('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(key('0:0:0:0:0:ffff:a00:1')).toBe('10.0.0.1');
    // …and the mapped addresses are not one /64 shared by all of IPv4.
    expect(key('::ffff:10.0.0.2')).toBe('10.0.0.2');
    const limiter = new MemoryLimiter();
    expect(await login(limiter, '::ffff:192.0.2.1')).toBe(true);
    expect(await login(limiter, '192.0.2.1')).toBe(true);
    expect(await login(limiter, '::ffff:192.0.2.1')).toBe(false);
    expect(await login(limiter, '::ffff:192.0.2.2')).toBe(true);
    expect(await login(limiter, '192.0.2.3')).toBe(true);
    expect(await login(limiter, '192.0.2.3')).toBe(true);
    expect(await login(limiter, '192.0.2.3')).toBe(false);
  });

  it('falls back on the socket address, and keeps what is no address as it is', () => {
    expect(clientKey(from(undefined, '2001:db8:0:3::9'))).toBe('2001:db8:0:3::/64');
    expect(clientKey(from(undefined, undefined))).toBe('unknown');
    expect(key('not-an-address')).toBe('not-an-address');
    expect(key('2001:db8::1::2')).toBe('2001:db8::1::2');
  });
});

describe('counterLifetimeSeconds', () => {
  it('is the longest configured window, and a minute for clocks apart', () => {
    expect(counterLifetimeSeconds(limits())).toBe(120);
    expect(counterLifetimeSeconds(limits({ recover_account: { max: 5, windowSeconds: 3600 } }))).toBe(3660);
    expect(counterLifetimeSeconds(limits({ register_client: { max: 5, windowSeconds: 604_800 } }))).toBe(604_860);
  });
});
