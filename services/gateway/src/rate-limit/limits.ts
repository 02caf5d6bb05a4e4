import { isIPv4, isIPv6 } from 'node:net';
import type { Request } from 'express';
import { HttpError } from '../http-errors';
import type { Limit, Limiter } from './rate-limiter';

/** The limited actions and their limits (from configuration). */
export type LimitName =
  | 'login_client'
  | 'login_account'
  | 'refresh_client'
  | 'refresh_session'
  | 'register_client'
  | 'register_account'
  | 'recover_client'
  | 'recover_account'
  | 'run_account'
  | 'run_client'
  | 'upload_account'
  | 'upload_client';

export type Limits = Record<LimitName, Limit>;

/**
 * Counts one event against each named limit and answers 429 (with `retry_after` and
 * `Retry-After`) when any is exceeded.
 */
export async function enforceLimits(
  limiter: Limiter,
  limits: Limits,
  checks: { name: LimitName; key: string }[],
): Promise<void> {
  const decisions = await limiter.hit(checks.map((c) => ({ key: `${c.name}:${c.key}`, limit: limits[c.name] })));
  const refused = decisions.filter((d) => !d.allowed) as { allowed: false; retryAfterSeconds: number }[];
  if (refused.length === 0) return;
  const retryAfter = Math.max(...refused.map((d) => d.retryAfterSeconds));
  throw new HttpError(429, 'rate_limited', 'Too many requests; try again later', { retry_after: retryAfter }, { 'Retry-After': String(retryAfter) });
}

/**
 * How long a counter may still count: the longest window of `limits` (a window's counter
 * counts until the window ends), and a minute for gateways' clocks that differ.
 */
export const counterLifetimeSeconds = (limits: Limits): number => Math.max(...Object.values(limits).map((l) => l.windowSeconds)) + 60;

/** The client's address (behind a trusted proxy, the forwarded one), as `clientAddressKey` keys it. */
export const clientKey = (req: Request): string => clientAddressKey(req.ip ?? req.socket.remoteAddress ?? 'unknown');

/**
 * Who a client is, for per-client limits: an IPv4 address (also written IPv4-mapped,
 * `::ffff:1.2.3.4`) as itself; an IPv6 address by its /64 (`2001:db8:0:1::/64`), the
 * smallest network a host is usually given, so a host cannot take a fresh counter for
 * each of its 2^64 addresses. Anything else as given.
 */
export function clientAddressKey(address: string): string {
  const ip = address.replace(/%.*$/, '').toLowerCase();
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return address;
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 part as two groups). */
function ipv6Groups(ip: string): number[] {
  const toGroups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = ip.split('::');
  const front = toGroups(head);
  if (tail === undefined) return front;
  const back = toGroups(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** The account a JSON body's `email` names (as accounts are kept: trimmed, lower case); '' when none. */
export const emailKey = (req: Request): string => {
  const email = (req.body as { email?: unknown } | undefined)?.email;
  return typeof email === 'string' ? email.trim().toLowerCase().slice(0, 320) : '';
};
