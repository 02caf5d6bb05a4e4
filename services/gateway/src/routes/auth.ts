import type { Request } from 'express';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import type { user } from '@gef/protos';
import { authOpenApi } from '../openapi/auth';
import { clientKey, emailKey, enforceLimits } from '../rate-limit/limits';
import { rpcOptions } from '../request-context';
import { parseInput } from '../validation';
import { callerOf } from '../auth/caller';
import { anonymousBodyLimit, type Resource } from './types';

const loginBody = z.object({
  email: z.string().max(1000),
  password: z.string().max(1024),
});

const refreshBody = z.object({ refresh_token: z.string().min(1).max(8192) });

const logoutBody = z.object({ refresh_token: z.string().max(8192).optional() }).optional();

/** The login reply: no envelope (clients read these keys at the top level). */
function tokenReply(tokens: user.Tokens | undefined) {
  return {
    access_token: tokens?.accessToken ?? '',
    refresh_token: tokens?.refreshToken ?? '',
    expires_in: tokens?.expiresIn ?? 0,
    user_id: tokens?.userId ?? '',
  };
}

/**
 * The account session a refresh token belongs to (its `sub` and `sid`), read without
 * checking its signature: only to count the refresh against that session's limit before
 * Keycloak checks the token. Keyed on the session, which only the token's holder knows, so
 * that nobody can use up another account's refreshes with forged tokens naming it. '' when
 * the token is not a JWT naming both.
 */
const refreshSessionKey = (req: Request): string => {
  const token = (req.body as { refresh_token?: unknown } | undefined)?.refresh_token;
  if (typeof token !== 'string' || token.length > 8192) return '';
  try {
    const { sub, sid } = decodeJwt(token);
    return typeof sub === 'string' && typeof sid === 'string' && sid !== '' ? `${sub.toLowerCase().slice(0, 100)}/${sid.slice(0, 100)}` : '';
  } catch {
    return '';
  }
};

/** `/auth…`: logins through Keycloak, via the user service. */
export const authResource: Resource = {
  name: 'auth',
  openapi: authOpenApi,
  routes: ({ clients, auth, limiter, limits }) => [
    {
      method: 'post',
      path: '/auth',
      operationId: 'login',
      body: 'json',
      bodyLimit: anonymousBodyLimit,
      handler: async (req, res) => {
        await enforceLimits(limiter, limits, [
          { name: 'login_client', key: clientKey(req) },
          ...(emailKey(req) ? [{ name: 'login_account' as const, key: emailKey(req) }] : []),
        ]);
        const body = parseInput(loginBody, req.body);
        const reply = await clients.user.login({ email: body.email, password: body.password }, rpcOptions(req));
        res.json(tokenReply(reply.tokens));
      },
    },
    {
      method: 'post',
      path: '/auth/refresh',
      operationId: 'refreshToken',
      body: 'json',
      bodyLimit: anonymousBodyLimit,
      handler: async (req, res) => {
        const session = refreshSessionKey(req);
        await enforceLimits(limiter, limits, [{ name: 'refresh_client', key: clientKey(req) }, ...(session ? [{ name: 'refresh_session' as const, key: session }] : [])]);
        const body = parseInput(refreshBody, req.body);
        const reply = await clients.user.refresh({ refreshToken: body.refresh_token }, rpcOptions(req));
        res.json(tokenReply(reply.tokens));
      },
    },
    {
      method: 'post',
      path: '/auth/logout',
      operationId: 'logout',
      body: 'json',
      bodyLimit: anonymousBodyLimit,
      handler: async (req, res) => {
        const principal = await auth.require(req);
        const body = parseInput(logoutBody, req.body);
        await clients.user.logout(
          { caller: callerOf(principal), sessionId: principal.sessionId, refreshToken: body?.refresh_token ?? '' },
          rpcOptions(req),
        );
        res.json({ msg: 'Successfully logged out' });
      },
    },
    {
      method: 'post',
      path: '/auth/logout-all',
      operationId: 'logoutAll',
      body: 'json',
      bodyLimit: anonymousBodyLimit,
      handler: async (req, res) => {
        const principal = await auth.require(req);
        const reply = await clients.user.logoutAll({ caller: callerOf(principal) }, rpcOptions(req));
        res.json({ msg: reply.message });
      },
    },
  ],
};
