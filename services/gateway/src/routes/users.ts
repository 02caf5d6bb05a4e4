import { z } from 'zod';
import { NotFound, shareOf } from '@gef/common';
import type { user } from '@gef/protos';
import { callerOf, roleFromName, roleName } from '../auth/caller';
import { usersOpenApi } from '../openapi/users';
import { inBatches } from '../in-batches';
import { clientKey, emailKey, enforceLimits } from '../rate-limit/limits';
import { listOf, positiveInt, queryOf } from '../query';
import { answerSource } from '../cache/answer-cache';
import { rpcOptions } from '../request-context';
import { apiDate } from '../timestamps';
import { parseInput } from '../validation';
import type { Response } from 'express';
import type { Principal } from '../auth/authenticator';
import type { ServiceClients } from '../clients';
import { scriptJson } from './scripts';
import { fromQgisPlugin, qgisScript } from './qgis-shape';
import { anonymousBodyLimit, type Resource } from './types';

/** A user as the REST API shows it. */
export function userJson(u: user.User | undefined) {
  if (!u) return null;
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    country: u.country,
    institution: u.institution,
    role: roleName(u.role),
    email_notifications_enabled: u.emailNotificationsEnabled,
    created_at: apiDate(u.createdAt),
    updated_at: apiDate(u.updatedAt),
  };
}

const text = z.string().max(100_000);
const optIn = z.boolean({ message: 'email_notifications_enabled must be true or false' });
const roleText = z.string().max(20).refine((r) => roleFromName(r) !== undefined, 'role must be one of USER, ADMIN, SUPERADMIN');

const createBody = z.object({
  email: z.string().max(1000),
  name: text,
  // Absent or null: no password (a link to set one is mailed); any string, even empty, must pass the policy.
  password: z.string().max(1024).nullish(),
  country: text.nullish(),
  institution: text.nullish(),
  role: roleText.optional(),
  email_notifications_enabled: optIn.optional(),
});

const updateMeBody = z
  .object({
    name: text.optional(),
    country: text.nullish(),
    institution: text.nullish(),
    password: z.string().max(1024).optional(),
    repeatPassword: z.string().max(1024).optional(),
    email_notifications_enabled: optIn.optional(),
  })
  .refine((b) => b.password === undefined || b.password === b.repeatPassword, {
    message: 'password and repeatPassword must be equal',
    path: ['repeatPassword'],
  });

const updateUserBody = z.object({
  name: text.optional(),
  country: text.nullish(),
  institution: text.nullish(),
  role: roleText.optional(),
  email_notifications_enabled: optIn.optional(),
});

const changePasswordBody = z.object({
  old_password: z.string().min(1).max(1024),
  new_password: z.string().min(1).max(1024),
});

// Any text is a token: one that is empty or too long is a bad one, a 404 from the user service (CONTRACT §4).
const resetBody = z.object({ token: z.string(), password: z.string().max(1024) });

const listQuery = ['filter', 'sort', 'page', 'per_page', 'include'] as const;

/**
 * A user as JSON, with their scripts (those the caller may see) when `include=scripts`.
 * Embedding is the gateway's one aggregation: each user's scripts come from the script
 * service, asked ten users at a time.
 */
async function usersJson(
  res: Response,
  clients: ServiceClients,
  principal: Principal,
  users: user.User[],
  include: string[],
): Promise<Record<string, unknown>[]> {
  if (!include.includes('scripts')) return users.map((u) => userJson(u)!);
  // Up to 100 scripts each, 10,000 in all (10 each in a list of 1,000 users).
  const perUser = shareOf(10_000, users.length, 100);
  const req = res.req;
  const qgis = fromQgisPlugin(res);
  return inBatches(users, 10, async (u) => {
    const reply = await clients.script.listScripts({ caller: callerOf(principal), userId: u.id, perPage: perUser }, rpcOptions(req));
    return { ...userJson(u)!, scripts: reply.scripts.map((s) => (qgis ? qgisScript(scriptJson(s)) : scriptJson(s))) };
  });
}
/** A user's id or e-mail from the path; one longer than any address names no user (404, as scripts and executions). */
const keyOf = (raw: string | string[] | undefined): string => {
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (!v || v.length > 320) throw new NotFound('User not found', 'not_found');
  return v;
};

/** `/api/v1/user…`. */
export const usersResource: Resource = {
  name: 'users',
  openapi: usersOpenApi,
  routes: ({ clients, auth, limiter, limits, profiles, answers }) => {
    /** A user this gateway just changed, as JSON; its cached profile is dropped at once, in every process of the gateway. */
    const changed = async (u: user.User | undefined) => {
      if (u) await profiles.invalidateEverywhere(u.id);
      return userJson(u);
    };
    return [
      {
        method: 'post',
        path: '/api/v1/user',
        operationId: 'createUser',
        body: 'json',
        bodyLimit: anonymousBodyLimit,
        handler: async (req, res) => {
          const principal = await auth.optional(req);
          queryOf(req, []);
          await enforceLimits(limiter, limits, [{ name: 'register_client', key: clientKey(req) }]);
          const body = parseInput(createBody, req.body);
          // Counted once the body is valid: malformed ones naming an address do not use up its share.
          const account = emailKey(req);
          if (account) await enforceLimits(limiter, limits, [{ name: 'register_account', key: account }]);
          const reply = await clients.user.createUser(
            {
              email: body.email,
              name: body.name,
              ...(typeof body.password === 'string' ? { password: body.password } : {}),
              country: body.country ?? '',
              institution: body.institution ?? '',
              ...(body.role ? { role: roleFromName(body.role) } : {}),
              emailNotificationsEnabled: body.email_notifications_enabled ?? false,
              caller: callerOf(principal),
            },
            rpcOptions(req),
          );
          res.json({ data: userJson(reply.user) });
        },
      },
      {
        method: 'get',
        path: '/api/v1/user',
        operationId: 'listUsers',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const query = queryOf(req, listQuery);
          const include = listOf(query, 'include', ['scripts']);
          const reply = await clients.user.listUsers(
            {
              caller: callerOf(principal),
              filter: query['filter'] ?? '',
              sort: query['sort'] ?? '',
              page: positiveInt(query, 'page') ?? 0,
              perPage: positiveInt(query, 'per_page') ?? 0,
            },
            rpcOptions(req),
          );
          res.json({ data: await usersJson(res, clients, principal, reply.users, include), page: reply.page, per_page: reply.perPage, total: Number(reply.total) });
        },
      },
      {
        method: 'get',
        path: '/api/v1/user/me',
        operationId: 'getMe',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const include = listOf(queryOf(req, ['include']), 'include', ['scripts']);
          const me = await profiles.read(principal.userId, async () => {
            const reply = await clients.user.getUser({ idOrEmail: 'me', caller: callerOf(principal) }, rpcOptions(req));
            if (!reply.user) throw new NotFound('User not found', 'not_found');
            return reply.user;
          });
          // Made from the cached profile alone (its scripts are cached nowhere).
          if (include.length === 0) answers.keep(req, res, principal, [answerSource(profiles, principal.userId, '', me)]);
          res.json({ data: (await usersJson(res, clients, principal, [me], include))[0] ?? null });
        },
      },
      {
        method: 'patch',
        path: '/api/v1/user/me',
        operationId: 'updateMe',
        body: 'json',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const body = parseInput(updateMeBody, req.body);
          const reply = await clients.user.updateUser(
            {
              idOrEmail: 'me',
              caller: callerOf(principal),
              ...(body.name !== undefined ? { name: body.name } : {}),
              ...(body.country !== undefined && body.country !== null ? { country: body.country } : {}),
              ...(body.institution !== undefined && body.institution !== null ? { institution: body.institution } : {}),
              ...(body.password !== undefined ? { password: body.password } : {}),
              ...(body.email_notifications_enabled !== undefined ? { emailNotificationsEnabled: body.email_notifications_enabled } : {}),
              sessionId: principal.sessionId,
            },
            rpcOptions(req),
          );
          res.json({ data: await changed(reply.user) });
        },
      },
      {
        method: 'patch',
        path: '/api/v1/user/me/change-password',
        operationId: 'changeMyPassword',
        body: 'json',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const body = parseInput(changePasswordBody, req.body);
          const reply = await clients.user.changePassword(
            { caller: callerOf(principal), oldPassword: body.old_password, newPassword: body.new_password, sessionId: principal.sessionId },
            rpcOptions(req),
          );
          res.json({ data: userJson(reply.user) });
        },
      },
      {
        method: 'delete',
        path: '/api/v1/user/me',
        operationId: 'deleteMe',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const reply = await clients.user.deleteUser({ idOrEmail: 'me', caller: callerOf(principal) }, rpcOptions(req));
          res.json({ data: await changed(reply.user) });
        },
      },
      {
        method: 'post',
        path: '/api/v1/user/reset-password',
        operationId: 'resetPassword',
        body: 'json',
        bodyLimit: anonymousBodyLimit,
        handler: async (req, res) => {
          queryOf(req, []);
          await enforceLimits(limiter, limits, [{ name: 'recover_client', key: clientKey(req) }]);
          const body = parseInput(resetBody, req.body);
          const reply = await clients.user.resetPassword({ token: body.token, password: body.password }, rpcOptions(req));
          res.json({ data: userJson(reply.user) });
        },
      },
      {
        method: 'get',
        path: '/api/v1/user/{user}',
        operationId: 'getUser',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const include = listOf(queryOf(req, ['include']), 'include', ['scripts']);
          const reply = await clients.user.getUser({ idOrEmail: keyOf(req.params['user']), caller: callerOf(principal) }, rpcOptions(req));
          res.json({ data: (await usersJson(res, clients, principal, reply.user ? [reply.user] : [], include))[0] ?? null });
        },
      },
      {
        method: 'patch',
        path: '/api/v1/user/{user}',
        operationId: 'updateUser',
        body: 'json',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const body = parseInput(updateUserBody, req.body);
          const reply = await clients.user.updateUser(
            {
              idOrEmail: keyOf(req.params['user']),
              caller: callerOf(principal),
              ...(body.name !== undefined ? { name: body.name } : {}),
              ...(body.country !== undefined && body.country !== null ? { country: body.country } : {}),
              ...(body.institution !== undefined && body.institution !== null ? { institution: body.institution } : {}),
              ...(body.role ? { role: roleFromName(body.role) } : {}),
              ...(body.email_notifications_enabled !== undefined ? { emailNotificationsEnabled: body.email_notifications_enabled } : {}),
            },
            rpcOptions(req),
          );
          res.json({ data: await changed(reply.user) });
        },
      },
      {
        method: 'delete',
        path: '/api/v1/user/{user}',
        operationId: 'deleteUser',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const reply = await clients.user.deleteUser({ idOrEmail: keyOf(req.params['user']), caller: callerOf(principal) }, rpcOptions(req));
          res.json({ data: await changed(reply.user) });
        },
      },
      {
        method: 'post',
        path: '/api/v1/user/{user}/recover-password',
        operationId: 'recoverPassword',
        handler: async (req, res) => {
          queryOf(req, []);
          // Always the same answer (CONTRACT §3): a key no account could have (longer than any
          // address) is asked about as the empty key, which names no account either.
          const raw = req.params['user'];
          const given = (Array.isArray(raw) ? raw[0] : raw) ?? '';
          const key = given.length > 320 ? '' : given.trim().toLowerCase();
          await enforceLimits(limiter, limits, [
            { name: 'recover_client', key: clientKey(req) },
            ...(key ? [{ name: 'recover_account' as const, key }] : []),
          ]);
          const reply = await clients.user.recoverPassword({ idOrEmail: key }, rpcOptions(req));
          res.json({ data: { message: reply.message } });
        },
      },
    ];
  },
};
