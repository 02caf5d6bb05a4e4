/**
 * CONTRACT §6: "When a run of a user who opted in reaches a terminal status, they get an
 * e-mail." The opt-in is the profile's `email_notifications_enabled` (default false), set at
 * registration or with PATCH; the mails land in MailDev.
 */
import { randomBytes } from 'node:crypto';
import { api, login, registerUser, strongPassword, superadminCredentials } from './helpers/api';
import { publishScript, runScript, waitForExecution } from './helpers/executions';
import { mailsTo, waitForMail } from './helpers/mail';

jest.setTimeout(300_000);

const unique = () => randomBytes(4).toString('hex');

type Account = { id: string; email: string; token: string };

async function register(prefix: string, body: Record<string, unknown> = {}): Promise<{ account: Account; user: any }> {
  const { email, created } = await registerUser(prefix, { name: `Notify ${prefix}`, ...body });
  expect(created.status).toBe(200);
  return { account: { id: created.body.data.id, email, token: (await login(email, strongPassword)).access_token }, user: created.body.data };
}

describe('the opt-in', () => {
  it('is off by default and shown in the user', async () => {
    const { account, user } = await register('notify-default');
    expect(user.email_notifications_enabled).toBe(false);
    const me = await api('GET', '/api/v1/user/me', { token: account.token });
    expect(me.body.data.email_notifications_enabled).toBe(false);
  });

  it('can be set at registration, and changed with PATCH /me, visible at once', async () => {
    const { account, user } = await register('notify-opted', { email_notifications_enabled: true });
    expect(user.email_notifications_enabled).toBe(true);
    // Read once so the gateway holds the profile; the change must not be served stale.
    expect((await api('GET', '/api/v1/user/me', { token: account.token })).body.data.email_notifications_enabled).toBe(true);
    const off = await api('PATCH', '/api/v1/user/me', { token: account.token, body: { email_notifications_enabled: false } });
    expect(off.status).toBe(200);
    expect(off.body.data.email_notifications_enabled).toBe(false);
    expect((await api('GET', '/api/v1/user/me', { token: account.token })).body.data.email_notifications_enabled).toBe(false);
    // The same value again is an update that changes nothing (a settings dialog saved unedited).
    const same = await api('PATCH', '/api/v1/user/me', { token: account.token, body: { email_notifications_enabled: false } });
    expect(same.status).toBe(200);
    expect(same.body.data).toMatchObject({ email_notifications_enabled: false, updated_at: off.body.data.updated_at });
    const on = await api('PATCH', '/api/v1/user/me', { token: account.token, body: { email_notifications_enabled: true, role: 'ADMIN' } });
    expect(on.status).toBe(200);
    expect(on.body.data).toMatchObject({ email_notifications_enabled: true, role: 'USER' });
    expect((await api('GET', '/api/v1/user/me', { token: account.token })).body.data.email_notifications_enabled).toBe(true);
  });

  it('must be a boolean', async () => {
    const { account } = await register('notify-bad');
    const res = await api('PATCH', '/api/v1/user/me', { token: account.token, body: { email_notifications_enabled: 'yes' } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/email_notifications_enabled/);
  });

  it('can be set by an admin on PATCH /user/{id}', async () => {
    const superadmin = superadminCredentials();
    const superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
    const { account } = await register('notify-admin');
    const res = await api('PATCH', `/api/v1/user/${account.id}`, { token: superToken, body: { email_notifications_enabled: true } });
    expect(res.status).toBe(200);
    expect(res.body.data.email_notifications_enabled).toBe(true);
    expect((await api('GET', '/api/v1/user/me', { token: account.token })).body.data.email_notifications_enabled).toBe(true);
  });
});

describe('the terminal-status e-mail', () => {
  let optedIn: Account;
  let notOptedIn: Account;
  let ok: { id: string; slug: string };
  let failing: { id: string; slug: string };
  const okName = `Notify OK ${unique()}`;

  beforeAll(async () => {
    [optedIn, notOptedIn] = await Promise.all([
      register('notify-in', { email_notifications_enabled: true }).then((r) => r.account),
      register('notify-out').then((r) => r.account),
    ]);
    [ok, failing] = await Promise.all([
      publishScript(optedIn.token, okName, 'def run(params, logger):\n    return "OK"\n'),
      publishScript(optedIn.token, `Notify Fail ${unique()}`, 'def run(params, logger):\n    raise ValueError("no data for this region")\n'),
    ]);
    for (const s of [ok, failing]) expect((await api('POST', `/api/v1/script/${s.id}/publish`, { token: optedIn.token })).status).toBe(200);
  });

  it('tells a user who opted in that a run FINISHED, naming the execution, the script and the status', async () => {
    const run = await runScript(optedIn.token, ok.slug);
    expect((await waitForExecution(optedIn.token, run.id)).status).toBe('FINISHED');
    const mail = await waitForMail(optedIn.email, new RegExp(run.id), 60_000);
    expect(mail.subject).toContain('FINISHED');
    expect(mail.subject).toContain(okName);
    expect(mail.text).toContain(run.id);
    expect(mail.text).toContain('FINISHED');
  });

  it('tells them that a run FAILED', async () => {
    const run = await runScript(optedIn.token, failing.slug);
    expect((await waitForExecution(optedIn.token, run.id)).status).toBe('FAILED');
    const mail = await waitForMail(optedIn.email, new RegExp(run.id), 60_000);
    expect(mail.subject).toContain('FAILED');
    expect(mail.text).toContain(run.id);
    expect(mail.text).toContain('FAILED');
  });

  it('tells them of a run cancelled before it started, and of a status set from outside', async () => {
    const superadmin = superadminCredentials();
    const superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
    const run = await runScript(optedIn.token, ok.slug);
    // An admin (an external runtime) ends it at once; whatever the runner did, it stays FAILED.
    const patched = await api('PATCH', `/api/v1/execution/${run.id}`, { token: superToken, body: { status: 'FAILED' } });
    expect([200, 409]).toContain(patched.status);
    const ended = await waitForExecution(optedIn.token, run.id);
    const mail = await waitForMail(optedIn.email, new RegExp(run.id), 60_000);
    expect(mail.subject).toContain(ended.status);
  });

  it('sends nothing to a user who did not opt in', async () => {
    const mine = await runScript(notOptedIn.token, ok.slug);
    const failed = await runScript(notOptedIn.token, failing.slug);
    expect((await waitForExecution(notOptedIn.token, mine.id)).status).toBe('FINISHED');
    expect((await waitForExecution(notOptedIn.token, failed.id)).status).toBe('FAILED');
    // A later run of a user who opted in is told: by then the earlier runs' turn has come.
    const later = await runScript(optedIn.token, ok.slug);
    await waitForExecution(optedIn.token, later.id);
    await waitForMail(optedIn.email, new RegExp(later.id), 60_000);
    expect(await mailsTo(notOptedIn.email)).toEqual([]);
  });

  it('sends one e-mail per execution', async () => {
    const all = await mailsTo(optedIn.email);
    const ids = all.map((m) => /Execution ([0-9a-f-]{36})/.exec(m.subject)?.[1]).filter((id): id is string => !!id);
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
