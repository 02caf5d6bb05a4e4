/**
 * Faults: the mail server (MailDev) killed and started again. A registration without a
 * password and a password recovery made while it is down both succeed, and their links
 * arrive once it is back (Temporal retries the delivery); each link works, once.
 */
import { api, login, newUser, strongPassword, uniqueEmail } from '../e2e/helpers/api';
import { mailsTo, tokenFrom, waitForMail } from '../e2e/helpers/mail';
import { Outages, sleep } from './helpers';

jest.setTimeout(600_000);

const outages = new Outages();

afterAll(() => outages.restore());

describe('a kill of the mail server', () => {
  it('accepts registrations and recoveries meanwhile, and mails their links once it is back', async () => {
    const known = await newUser('fault-mail');
    await outages.kill('maildev');

    const email = uniqueEmail('fault-mail-new');
    const registered = await api('POST', '/api/v1/user', { body: { email, name: 'Later Mail' } });
    expect(registered.status).toBe(200);
    expect(registered.body.data).toMatchObject({ email, role: 'USER' });
    const recovered = await api('POST', `/api/v1/user/${encodeURIComponent(known.email)}/recover-password`);
    expect(recovered.status).toBe(200);

    await sleep(2000);
    await outages.start('maildev');

    // The set-password link of the new account: it sets the password, and only once.
    const setMail = await waitForMail(email, /Set your GEF API password/, 120_000);
    const newPassword = `${strongPassword}x`;
    expect((await api('POST', '/api/v1/user/reset-password', { body: { token: tokenFrom(setMail), password: newPassword } })).status).toBe(200);
    expect((await login(email, newPassword)).user_id).toBe(registered.body.data.id);
    expect((await api('POST', '/api/v1/user/reset-password', { body: { token: tokenFrom(setMail), password: `${newPassword}y` } })).status).toBe(404);

    // The recovery link of the known account.
    const resetMail = await waitForMail(known.email, /Reset your GEF API password/, 120_000);
    const changed = `${strongPassword}z`;
    expect((await api('POST', '/api/v1/user/reset-password', { body: { token: tokenFrom(resetMail), password: changed } })).status).toBe(200);
    expect((await login(known.email, changed)).user_id).toBe(known.id);

    // One e-mail each.
    await sleep(3000);
    expect((await mailsTo(email)).length).toBe(1);
    expect((await mailsTo(known.email)).filter((m) => /Reset your GEF API password/.test(m.subject)).length).toBe(1);
  });
});
