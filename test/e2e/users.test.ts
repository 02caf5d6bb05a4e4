/**
 * CONTRACT §2–§4 against the real stack: Keycloak logins, revocation, mail flows, lockout,
 * rate limits, deletion, role changes, the authorization matrix and bad input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { readStackInfo, startPart, stopPart } from '../harness/stack';
import { api, login, newUser, readUntilCacheHit, strongPassword, superadminCredentials, uniqueEmail } from './helpers/api';
import { mailsTo, tokenFrom, waitForMail } from './helpers/mail';

jest.setTimeout(180_000);

let superToken: string;

beforeAll(async () => {
  const admin = superadminCredentials();
  superToken = (await login(admin.email, admin.password, 120_000)).access_token;
});

/** Recovery mails go out after the answer (through an outbox and a workflow): the five, then a while for any more. */
async function fiveMailsAndNoMore(email: string): Promise<void> {
  await eventually(() => mailsTo(email), (mails) => mails.length >= 5, 30_000);
  await new Promise((r) => setTimeout(r, 2000));
  expect((await mailsTo(email)).length).toBe(5);
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Probes until `ok` holds or `timeoutMs` passes: the last answer, and how long after the
 * call its probe was sent (what a "within a second" bound is about, without the probe's own
 * round trip on a busy machine).
 */
async function probeUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<{ value: T; sentAfterMs: number }> {
  const started = Date.now();
  for (;;) {
    const sent = Date.now();
    const value = await fn();
    if (ok(value) || Date.now() - started > timeoutMs) return { value, sentAfterMs: sent - started };
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function newAdmin(): Promise<{ id: string; token: string; email: string }> {
  const email = uniqueEmail('admin');
  const created = await api('POST', '/api/v1/user', { token: superToken, body: { email, name: 'An Admin', password: strongPassword, role: 'ADMIN' } });
  expect(created.status).toBe(200);
  expect(created.body.data.role).toBe('ADMIN');
  return { id: created.body.data.id, email, token: (await login(email, strongPassword)).access_token };
}

describe('login family', () => {
  it('registers, logs in, refreshes, logs out, and refuses the old token within a second', async () => {
    const email = uniqueEmail('flow');
    const created = await api('POST', '/api/v1/user', { body: { email: email.toUpperCase(), name: 'Flow', password: strongPassword, country: 'KE', unknown: 1 } });
    expect(created.status).toBe(200);
    expect(created.body.data).toMatchObject({ email, name: 'Flow', country: 'KE', institution: '', role: 'USER' });
    expect(created.body.data.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(created.body)).not.toMatch(/password|hash/i);

    const tokens = await api('POST', '/auth', { body: { email: email.toUpperCase(), password: strongPassword, extra: true } });
    expect(tokens.status).toBe(200);
    expect(tokens.body).toEqual({ access_token: expect.any(String), refresh_token: expect.any(String), expires_in: 3600, user_id: created.body.data.id });
    const claims = JSON.parse(Buffer.from(tokens.body.access_token.split('.')[1], 'base64url').toString());
    expect(claims.sub).toBe(created.body.data.id);
    expect(typeof claims.exp).toBe('number');

    const me = await api('GET', '/api/v1/user/me', { token: tokens.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body.data.email).toBe(email);
    expect(me.body.data.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);

    const refreshed = await api('POST', '/auth/refresh', { body: { refresh_token: tokens.body.refresh_token } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.user_id).toBe(created.body.data.id);

    const out = await api('POST', '/auth/logout', { token: refreshed.body.access_token, body: { refresh_token: refreshed.body.refresh_token } });
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ msg: 'Successfully logged out' });
    const { value: refused, sentAfterMs } = await probeUntil(() => api('GET', '/api/v1/user/me', { token: refreshed.body.access_token }), (r) => r.status === 401, 1000);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('token_revoked');
    expect(sentAfterMs).toBeLessThan(1000);
    const again = await api('POST', '/auth/refresh', { body: { refresh_token: refreshed.body.refresh_token } });
    expect(again.status).toBe(401);
  });

  it('lets one account log in 60 times in a minute, as older runtimes do', async () => {
    const u = await newUser('runtime');
    const started = Date.now();
    for (let i = 0; i < 60; i++) {
      const res = await api('POST', '/auth', { body: { email: u.email, password: u.password } });
      expect(res.status).toBe(200);
    }
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('lets one account log in from many runtimes at once', async () => {
    const u = await newUser('parallel');
    const results = await Promise.all(Array.from({ length: 8 }, () => api('POST', '/auth', { body: { email: u.email, password: u.password } })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
  });

  it('refuses wrong credentials with the contract body', async () => {
    const res = await api('POST', '/auth', { body: { email: 'nobody-here@example.org', password: 'Wrong-Passw0rd!' } });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ status: 401, detail: 'Invalid credentials', message: 'Invalid credentials', msg: 'Invalid credentials' });
  });

  it('ends every session with logout-all', async () => {
    const u = await newUser('all');
    const second = await login(u.email, u.password);
    const res = await api('POST', '/auth/logout-all', { token: u.token });
    expect(res.status).toBe(200);
    // Refused within the contract's second by every gateway worker (each learns it from its
    // revocation stream).
    for (const token of [u.token, second.access_token]) {
      const { value: r, sentAfterMs } = await probeUntil(() => api('GET', '/api/v1/user/me', { token }), (v) => v.status === 401, 1000);
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('token_revoked');
      expect(sentAfterMs).toBeLessThan(1000);
    }
    const fresh = await login(u.email, u.password);
    expect((await api('GET', '/api/v1/user/me', { token: fresh.access_token })).status).toBe(200);
  });

  it('locks an account after repeated failures', async () => {
    const u = await newUser('lock');
    for (let i = 0; i < 5; i++) {
      const r = await api('POST', '/auth', { body: { email: u.email, password: 'Wrong-Passw0rd!1' } });
      expect(r.status).toBe(401);
    }
    const locked = await api('POST', '/auth', { body: { email: u.email, password: u.password } });
    expect(locked.status).toBe(401);
    expect(locked.body.error).toBe('account_locked');
    expect(locked.body.minutes_remaining).toBeGreaterThanOrEqual(1);
    expect(locked.body.minutes_remaining).toBeLessThanOrEqual(15);
  });
});

describe('mail flows', () => {
  it('registers without a password, mails a single-use link, and sets the password', async () => {
    const email = uniqueEmail('nopass');
    const created = await api('POST', '/api/v1/user', { body: { email, name: 'No Pass' } });
    expect(created.status).toBe(200);
    const mail = await waitForMail(email, /set your/i);
    const token = tokenFrom(mail);
    // The mailed link opens the page that sets it.
    const link = /https?:\/\/\S+\/reset-password\?token=\S+/.exec(mail.text ?? '')![0];
    const page = await fetch(link);
    expect({ status: page.status, type: page.headers.get('content-type') }).toEqual({ status: 200, type: expect.stringMatching(/^text\/html/) });
    expect(await page.text()).toContain('Set your password');
    const weak = await api('POST', '/api/v1/user/reset-password', { body: { token, password: 'weak' } });
    expect(weak.status).toBe(422);
    const set = await api('POST', '/api/v1/user/reset-password', { body: { token, password: strongPassword } });
    expect(set.status).toBe(200);
    expect(set.body.data.email).toBe(email);
    const reused = await api('POST', '/api/v1/user/reset-password', { body: { token, password: strongPassword } });
    expect(reused.status).toBe(404);
    expect((await login(email, strongPassword)).user_id).toBe(created.body.data.id);
  });

  it('recovers a password: e-mail, reset, old password refused', async () => {
    const u = await newUser('recover');
    const res = await api('POST', `/api/v1/user/${encodeURIComponent(u.email)}/recover-password`);
    expect(res.status).toBe(200);
    expect(res.body.data.message).toEqual(expect.any(String));
    const unknown = await api('POST', `/api/v1/user/${encodeURIComponent(uniqueEmail('ghost'))}/recover-password`);
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual(res.body);
    // Longer than any address: no account could have it, and the answer is the same.
    const tooLong = await api('POST', `/api/v1/user/${'x'.repeat(400)}/recover-password`);
    expect({ status: tooLong.status, body: tooLong.body }).toEqual({ status: 200, body: res.body });
    const token = tokenFrom(await waitForMail(u.email, /reset your/i));
    const newPassword = 'Another-Passw0rd!';
    const reset = await api('POST', '/api/v1/user/reset-password', { body: { token, password: newPassword } });
    expect(reset.status).toBe(200);
    expect(reset.body.data.updated_at > reset.body.data.created_at).toBe(true);
    // The sessions held before the reset end with it.
    const old = await eventually(() => api('GET', '/api/v1/user/me', { token: u.token }), (r) => r.status === 401, 1000);
    expect({ status: old.status, error: old.body.error }).toEqual({ status: 401, error: 'token_revoked' });
    expect((await api('POST', '/auth/refresh', { body: { refresh_token: u.refresh } })).status).toBe(401);
    expect((await api('POST', '/auth', { body: { email: u.email, password: u.password } })).status).toBe(401);
    expect((await api('POST', '/auth', { body: { email: u.email, password: newPassword } })).status).toBe(200);
    // A bad token, however it is bad, is a 404 (CONTRACT §4).
    for (const token of ['not-a-token', '', 'x'.repeat(2000), 'x'.repeat(20_000)]) {
      expect((await api('POST', '/api/v1/user/reset-password', { body: { token, password: newPassword } })).status).toBe(404);
    }
  });

  it('rate limits recovery per account with 429 and Retry-After', async () => {
    const u = await newUser('ratelimit');
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 6; i++) {
      last = await api('POST', `/api/v1/user/${u.id}/recover-password`);
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(last!.status).toBe(429);
    expect(last!.body).toMatchObject({ status: 429, error: 'rate_limited' });
    expect(last!.body.retry_after).toBeGreaterThan(0);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await mailsTo(u.email)).length).toBeLessThanOrEqual(5);
    // Named by its e-mail the account passes the gateway's count again, but gets no more mail.
    for (let i = 0; i < 3; i++) expect((await api('POST', `/api/v1/user/${encodeURIComponent(u.email.toUpperCase())}/recover-password`)).status).toBe(200);
    await fiveMailsAndNoMore(u.email);
  });

  it("answers 404, not a failure, when the user's login is gone halfway through a deletion", async () => {
    const u = await newUser('half-deleted');
    expect((await api('POST', `/api/v1/user/${u.id}/recover-password`)).status).toBe(200);
    const token = tokenFrom(await waitForMail(u.email, /reset your/i));
    // A deletion removes the login from Keycloak first, then the profile: between the two steps.
    const { urls, keycloak } = readStackInfo();
    const admin = await fetch(`${urls['keycloak']}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'admin-cli', username: keycloak.admin, password: keycloak.adminPassword, grant_type: 'password' }),
    });
    const adminToken = ((await admin.json()) as { access_token: string }).access_token;
    const removed = await fetch(`${urls['keycloak']}/admin/realms/${keycloak.realm}/users/${u.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${adminToken}` } });
    expect(removed.status).toBe(204);
    const promoted = await api('PATCH', `/api/v1/user/${u.id}`, { token: superToken, body: { role: 'ADMIN' } });
    expect({ status: promoted.status, error: promoted.body.error }).toEqual({ status: 404, error: 'not_found' });
    const reset = await api('POST', '/api/v1/user/reset-password', { body: { token, password: 'Another-Passw0rd!' } });
    expect({ status: reset.status, error: reset.body.error }).toEqual({ status: 404, error: 'not_found' });
  });

  it('sends an account at most 5 recovery mails however many ask at once, under however many names', async () => {
    const u = await newUser('ratelimit-race');
    const keys = [u.id, u.email, u.email.toUpperCase(), u.id.toUpperCase(), ` ${u.email}`, ` ${u.id}`, `${u.email} `, `${u.id} `];
    const answers = await Promise.all(keys.map((key) => api('POST', `/api/v1/user/${encodeURIComponent(key)}/recover-password`)));
    expect(answers.map((a) => a.status)).toEqual(keys.map(() => 200));
    await fiveMailsAndNoMore(u.email);
  });
});

describe('profile and password', () => {
  it('updates the profile, ignores role, takes an unchanged profile, and says Not updated when no field is given', async () => {
    const u = await newUser('profile');
    const res = await api('PATCH', '/api/v1/user/me', { token: u.token, body: { name: 'New Name', institution: 'Lab', role: 'SUPERADMIN' } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ name: 'New Name', institution: 'Lab', role: 'USER' });
    // The profile sent back as it is (a profile dialog saved without edits): 200, nothing changes.
    const same = await api('PATCH', '/api/v1/user/me', { token: u.token, body: { name: 'New Name', institution: 'Lab' } });
    expect(same.status).toBe(200);
    expect(same.body.data).toMatchObject({ name: 'New Name', institution: 'Lab', role: 'USER', updated_at: res.body.data.updated_at });
    const nothing = await api('PATCH', '/api/v1/user/me', { token: u.token, body: { role: 'SUPERADMIN' } });
    expect(nothing.status).toBe(400);
    expect(nothing.body.detail).toBe('Not updated');
    const mismatch = await api('PATCH', '/api/v1/user/me', { token: u.token, body: { password: strongPassword, repeatPassword: 'Different-Passw0rd!' } });
    expect(mismatch.status).toBe(400);
  });

  it('changes the password: wrong old is 401, weak is 422', async () => {
    const u = await newUser('chpw');
    expect((await api('PATCH', '/api/v1/user/me/change-password', { token: u.token, body: { old_password: 'Wrong-Passw0rd!', new_password: 'Brand-New-Passw0rd!' } })).status).toBe(401);
    expect((await api('PATCH', '/api/v1/user/me/change-password', { token: u.token, body: { old_password: u.password, new_password: 'short' } })).status).toBe(422);
    const other = await login(u.email, u.password);
    const ok = await api('PATCH', '/api/v1/user/me/change-password', { token: u.token, body: { old_password: u.password, new_password: 'Brand-New-Passw0rd!' } });
    expect(ok.status).toBe(200);
    expect((await api('GET', '/api/v1/user/me', { token: u.token })).status).toBe(200);
    expect((await api('GET', '/api/v1/user/me', { token: other.access_token })).status).toBe(401);
    await login(u.email, 'Brand-New-Passw0rd!');
  });

  it('sets the password with PATCH me: every other session ends, the one that asked stays', async () => {
    const u = await newUser('setpw');
    const other = await login(u.email, u.password);
    const res = await api('PATCH', '/api/v1/user/me', { token: u.token, body: { password: 'Brand-New-Passw0rd!', repeatPassword: 'Brand-New-Passw0rd!' } });
    expect(res.status).toBe(200);
    expect((await api('GET', '/api/v1/user/me', { token: u.token })).status).toBe(200);
    expect((await api('GET', '/api/v1/user/me', { token: other.access_token })).status).toBe(401);
    expect((await api('POST', '/auth/refresh', { body: { refresh_token: other.refresh_token } })).status).toBe(401);
    expect((await api('POST', '/auth', { body: { email: u.email, password: u.password } })).status).toBe(401);
    await login(u.email, 'Brand-New-Passw0rd!');
  });

  it('registers with a weak password as 422 and a duplicate e-mail as 400', async () => {
    const email = uniqueEmail('dup');
    expect((await api('POST', '/api/v1/user', { body: { email, name: 'W', password: 'weakweak' } })).status).toBe(422);
    expect((await api('POST', '/api/v1/user', { body: { email, name: 'D', password: strongPassword } })).status).toBe(200);
    const dup = await api('POST', '/api/v1/user', { body: { email: email.toUpperCase(), name: 'D', password: strongPassword } });
    expect(dup.status).toBe(400);
  });
});

describe('deletion and roles', () => {
  it('deletes a user: login refused, token refused, profile gone', async () => {
    const u = await newUser('delete');
    const res = await api('DELETE', '/api/v1/user/me', { token: u.token });
    expect(res.status).toBe(200);
    expect(res.body.data.email).toBe(u.email);
    expect((await api('GET', '/api/v1/user/me', { token: u.token })).status).toBe(401);
    expect((await api('POST', '/auth', { body: { email: u.email, password: u.password } })).status).toBe(401);
    const gone = await eventually(() => api('GET', `/api/v1/user/${u.id}`, { token: superToken }), (r) => r.status === 404, 30_000);
    expect(gone.status).toBe(404);
  });

  it('finishes a deletion after a service that holds part of it was down', async () => {
    const u = await newUser('saga');
    await stopPart('execution');
    try {
      const res = await api('DELETE', `/api/v1/user/${u.id}`, { token: superToken });
      expect(res.status).toBe(200);
      // Logins stop at once; the rest waits for the execution service's worker.
      expect((await api('POST', '/auth', { body: { email: u.email, password: u.password } })).status).toBe(401);
      await new Promise((r) => setTimeout(r, 3000));
      expect((await api('GET', `/api/v1/user/${u.id}`, { token: superToken })).status).toBe(200);
    } finally {
      await startPart('execution');
    }
    const gone = await eventually(() => api('GET', `/api/v1/user/${u.id}`, { token: superToken }), (r) => r.status === 404, 60_000);
    expect(gone.status).toBe(404);
  });

  it('applies a role change on the next request', async () => {
    const u = await newUser('promote');
    expect((await api('GET', '/api/v1/user', { token: u.token })).status).toBe(403);
    const promoted = await api('PATCH', `/api/v1/user/${u.id}`, { token: superToken, body: { role: 'ADMIN' } });
    expect(promoted.status).toBe(200);
    expect(promoted.body.data.role).toBe('ADMIN');
    const old = await api('GET', '/api/v1/user/me', { token: u.token });
    expect(old.status).toBe(401);
    expect(old.body.error).toBe('token_revoked');
    const fresh = await login(u.email, u.password);
    const list = await api('GET', '/api/v1/user?per_page=5&sort=-created_at', { token: fresh.access_token });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ page: 1, per_page: 5, total: expect.any(Number) });
    expect(list.body.data.every((x: { role: string; id: string }) => x.role === 'USER' || x.id === u.id)).toBe(true);
  });

  it('filters and sorts users, refusing unknown fields', async () => {
    const u = await newUser('filterme');
    const res = await api('GET', `/api/v1/user?filter=${encodeURIComponent(`email like %${u.email.slice(0, 20)}%`)}`, { token: superToken });
    expect(res.status).toBe(200);
    expect(res.body.data.map((x: { id: string }) => x.id)).toEqual([u.id]);
    const bad = await api('GET', '/api/v1/user?filter=password=x', { token: superToken });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain('password');
    expect((await api('GET', '/api/v1/user?sort=secret', { token: superToken })).status).toBe(400);
    expect((await api('GET', '/api/v1/user?colour=red', { token: superToken })).status).toBe(400);
  });
});

describe('the authorization matrix', () => {
  type Actor = 'anonymous' | 'self' | 'other' | 'admin' | 'superadmin';
  interface Row {
    what: string;
    method: string;
    path: (target: { id: string; email: string }) => string;
    body?: unknown;
    expect: Record<Actor, number>;
  }
  const rows: Row[] = [
    { what: 'list users', method: 'GET', path: () => '/api/v1/user', expect: { anonymous: 401, self: 403, other: 403, admin: 200, superadmin: 200 } },
    { what: 'read me', method: 'GET', path: () => '/api/v1/user/me', expect: { anonymous: 401, self: 200, other: 200, admin: 200, superadmin: 200 } },
    { what: 'read a USER by id', method: 'GET', path: (t) => `/api/v1/user/${t.id}`, expect: { anonymous: 401, self: 200, other: 404, admin: 200, superadmin: 200 } },
    { what: 'read a USER by e-mail', method: 'GET', path: (t) => `/api/v1/user/${encodeURIComponent(t.email)}`, expect: { anonymous: 401, self: 200, other: 404, admin: 200, superadmin: 200 } },
    { what: 'update a USER', method: 'PATCH', path: (t) => `/api/v1/user/${t.id}`, body: { institution: `I-${Date.now()}` }, expect: { anonymous: 401, self: 200, other: 404, admin: 200, superadmin: 200 } },
    { what: 'register an ADMIN', method: 'POST', path: () => '/api/v1/user', body: { email: 'x', name: 'x', password: strongPassword, role: 'ADMIN' }, expect: { anonymous: 403, self: 403, other: 403, admin: 403, superadmin: 200 } },
    { what: 'delete a USER', method: 'DELETE', path: (t) => `/api/v1/user/${t.id}`, expect: { anonymous: 401, self: 200, other: 404, admin: 200, superadmin: 200 } },
    { what: 'recover a password', method: 'POST', path: (t) => `/api/v1/user/${t.id}/recover-password`, expect: { anonymous: 200, self: 200, other: 200, admin: 200, superadmin: 200 } },
  ];

  const actors: Actor[] = ['anonymous', 'self', 'other', 'admin', 'superadmin'];
  const cases = rows.flatMap((row) => actors.map((actor) => [row.what, actor, row.expect[actor], row] as const));

  let admin: { token: string };
  let other: { token: string };
  beforeAll(async () => {
    admin = await newAdmin();
    other = await newUser('other');
  });

  it.each(cases)('%s as %s → %i', async (_what, actor, status, row) => {
    // A fresh target per case: some rows change or delete it.
    const target = await newUser('target');
    const token = { anonymous: undefined, self: target.token, other: other.token, admin: admin.token, superadmin: superToken }[actor];
    let body = row.body;
    if (row.what === 'register an ADMIN') body = { ...(row.body as object), email: uniqueEmail('matrix') };
    const res = await api(row.method, row.path(target), { token, body });
    expect({ status: res.status, body: res.status >= 400 ? res.body.status : res.status }).toEqual({ status, body: status });
  });

  it('keeps ADMINs from seeing or changing other admins, and admins from deleting themselves', async () => {
    const a2 = await newAdmin();
    expect((await api('GET', `/api/v1/user/${a2.id}`, { token: admin.token })).status).toBe(404);
    expect((await api('GET', `/api/v1/user/${a2.id}`, { token: superToken })).status).toBe(200);
    // Oneself however named: `me`, the id, the e-mail in any case.
    for (const key of ['me', a2.id, a2.email, a2.email.toUpperCase()]) {
      expect((await api('DELETE', `/api/v1/user/${encodeURIComponent(key)}`, { token: a2.token })).status).toBe(403);
      const demoted = await api('PATCH', `/api/v1/user/${encodeURIComponent(key)}`, { token: a2.token, body: { role: 'USER' } });
      expect({ key, status: demoted.status, error: demoted.body.error }).toEqual({ key, status: 400, error: 'not_updated' });
    }
    const still = await api('GET', '/api/v1/user/me', { token: a2.token });
    expect({ status: still.status, role: still.body.data.role }).toEqual({ status: 200, role: 'ADMIN' });
    const u = await newUser('nopromote');
    expect((await api('PATCH', `/api/v1/user/${u.id}`, { token: admin.token, body: { role: 'ADMIN' } })).status).toBe(403);
  });
});

describe('bad input', () => {
  const long = 'x'.repeat(10_000);
  const cases: [string, string, string, unknown, number][] = [
    ['array body', 'POST', '/api/v1/user', [1, 2], 400],
    ['null body', 'POST', '/api/v1/user', null, 400],
    ['string body', 'POST', '/auth', 'hello', 400],
    ['missing email', 'POST', '/api/v1/user', { name: 'x' }, 400],
    ['email not a string', 'POST', '/api/v1/user', { email: 12, name: 'x' }, 400],
    ['invalid email', 'POST', '/api/v1/user', { email: 'not-an-email', name: 'x' }, 400],
    ['e-mail beyond ASCII before the @', 'POST', '/api/v1/user', { email: 'prøbe@example.org', name: 'x', password: strongPassword }, 400],
    ['e-mail domain outside the Latin script', 'POST', '/api/v1/user', { email: 'probe@例え.jp', name: 'x', password: strongPassword }, 400],
    ['unicode email with spaces', 'POST', '/api/v1/user', { email: 'ü ber@exämple.org', name: 'x' }, 400],
    ['10,000-character name', 'POST', '/api/v1/user', { email: 'long@example.org', name: long }, 400],
    ['control characters', 'POST', '/api/v1/user', { email: 'ctrl@example.org', name: 'a\u0000b' }, 400],
    ['unknown role', 'POST', '/api/v1/user', { email: 'role@example.org', name: 'x', role: 'GOD' }, 400],
    ['login without password', 'POST', '/auth', { email: 'x@example.org' }, 400],
    ['refresh without token', 'POST', '/auth/refresh', {}, 400],
    ['garbage refresh token', 'POST', '/auth/refresh', { refresh_token: 'garbage' }, 401],
    ['SQL in e-mail', 'POST', '/auth', { email: "' or 1=1 --", password: 'x' }, 401],
    ['reset without token', 'POST', '/api/v1/user/reset-password', { password: strongPassword }, 400],
  ];

  it.each(cases)('%s → %i, nothing changed', async (_name, method, path, body, status) => {
    const res = await api(method, path, { body });
    expect(res.status).toBe(status);
    expect(res.body.status).toBe(status);
    expect(res.text).not.toMatch(/\bat .+\.ts:\d+|node_modules|syntax error|relation /i);
  });

  it('stores HTML and SQL text verbatim and safely', async () => {
    const email = uniqueEmail('html');
    const name = `<script>alert(1)</script>'); drop table user_profile; --`;
    const res = await api('POST', '/api/v1/user', { body: { email, name, password: strongPassword } });
    expect(res.status).toBe(200);
    expect(res.body.data.name).toBe(name);
    expect((await api('GET', '/api/v1/user', { token: superToken })).status).toBe(200);
  });
});

describe('two gateway instances', () => {
  let second: ChildProcess | undefined;
  let otherUrl: string;
  afterAll(() => {
    second?.kill('SIGTERM');
  });

  beforeAll(async () => {
    const info = readStackInfo();
    const port = await new Promise<number>((ok) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => ok(p));
      });
    });
    second = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, '../../services/gateway/src/main.ts')], {
      cwd: resolve(__dirname, '../..'),
      env: { ...process.env, ...info.env.gateway, PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    otherUrl = `http://127.0.0.1:${port}`;
    const up = () => fetch(`${otherUrl}/ping`).then((r) => r.status, () => 0);
    expect(await eventually(up, (s) => s === 200, 60_000)).toBe(200);
  });

  const meOnSecond = (token: string) =>
    fetch(`${otherUrl}/api/v1/user/me`, { headers: { Authorization: `Bearer ${token}` } }).then(
      async (r) => ({ status: r.status, name: r.status === 200 ? ((await r.json()) as { data: { name: string } }).data.name : undefined }),
      () => ({ status: 0, name: undefined }),
    );

  it('refuses a logged-out token on another gateway within a second', async () => {
    const u = await newUser('twogw');
    expect((await eventually(() => meOnSecond(u.token), (r) => r.status === 200, 60_000)).status).toBe(200);
    expect((await api('POST', '/auth/logout', { token: u.token })).status).toBe(200);
    const { value: after, sentAfterMs } = await probeUntil(() => meOnSecond(u.token), (r) => r.status === 401, 1000);
    expect(after.status).toBe(401);
    expect(sentAfterMs).toBeLessThan(1000);
  });

  it('shows a profile change made through one gateway on the other within a second, though the other had it cached', async () => {
    const u = await newUser('twogw-profile');
    // Read again on the second gateway until an answer comes from its cache.
    expect((await eventually(() => meOnSecond(u.token), (r) => r.status === 200, 60_000)).name).toBe('Test twogw-profile');
    const reads = await readUntilCacheHit('profile', () => meOnSecond(u.token), otherUrl);
    expect(reads.after).toBe(reads.before + 1);
    for (const answer of reads.answers) expect(answer.name).toBe('Test twogw-profile');
    for (const name of ['Renamed Once', 'Renamed Twice']) {
      expect((await api('PATCH', '/api/v1/user/me', { token: u.token, body: { name } })).status).toBe(200);
      const { value: seen, sentAfterMs } = await probeUntil(() => meOnSecond(u.token), (r) => r.name === name, 1000);
      expect(seen.name).toBe(name);
      expect(sentAfterMs).toBeLessThan(1000);
      // The gateway that made the change shows it at once.
      expect((await api('GET', '/api/v1/user/me', { token: u.token })).body.data.name).toBe(name);
    }
  });
});
