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

/** The client's address (behind a trusted proxy, the forwarded one). */
export const clientKey = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/** The account a JSON body's `email` names (as accounts are kept: trimmed, lower case); '' when none. */
export const emailKey = (req: Request): string => {
  const email = (req.body as { email?: unknown } | undefined)?.email;
  return typeof email === 'string' ? email.trim().toLowerCase().slice(0, 320) : '';
};
