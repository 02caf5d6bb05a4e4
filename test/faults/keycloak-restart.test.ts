/**
 * Faults: Keycloak killed and started again. While it is down, what needs it (logins,
 * refreshes, registrations, profile changes) answers 503 with the contract's body, never a
 * 500; what does not (runs, executions, profiles and user lists read with tokens already
 * issued) goes on. Once it is back, logins work again by themselves.
 */
import { api, login, newUser, strongPassword, superadminCredentials, uniqueEmail } from '../e2e/helpers/api';
import { publishScript, runScript, waitForExecution } from '../e2e/helpers/executions';
import { eventually, expectErrorBody, Outages, sleep } from './helpers';

jest.setTimeout(600_000);

const outages = new Outages();

afterAll(() => outages.restore());

describe('a kill of Keycloak', () => {
  it('refuses what needs it with 503s, serves the rest, and lets users log in once it is back', async () => {
    const user = await newUser('fault-keycloak');
    const admin = (await login(superadminCredentials().email, superadminCredentials().password)).access_token;
    const script = await publishScript(user.token, `Fault Keycloak ${Date.now()}`, 'def run(params, logger):\n    logger.info("ran")\n    return 1\n');
    // The user service has read the role holders once before the outage.
    expect((await api('GET', '/api/v1/user?per_page=1', { token: admin })).status).toBe(200);

    await outages.kill('keycloak');
    // Past the two seconds the user service keeps a read of Keycloak's role holders fresh.
    await sleep(2500);

    // What needs Keycloak: 503 with the contract's body (and message/msg on /auth routes).
    const loginDown = await api('POST', '/auth', { body: { email: user.email, password: user.password } });
    expectErrorBody(loginDown, 503);
    expect(loginDown.body).toMatchObject({ message: loginDown.body.detail, msg: loginDown.body.detail });
    expectErrorBody(await api('POST', '/auth/refresh', { body: { refresh_token: user.refresh } }), 503);
    expectErrorBody(await api('POST', '/api/v1/user', { body: { email: uniqueEmail('fault-keycloak-new'), name: 'New', password: strongPassword } }), 503);

    // What does not: reads with tokens already issued, and runs.
    const me = await api('GET', '/api/v1/user/me', { token: user.token });
    expect(me.status).toBe(200);
    expect(me.body.data).toMatchObject({ id: user.id, email: user.email, role: 'USER' });
    const listed = await api('GET', `/api/v1/user?filter=${encodeURIComponent(`email=${user.email}`)}`, { token: admin });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([expect.objectContaining({ id: user.id, role: 'USER' })]);
    const other = await api('GET', `/api/v1/user/${user.id}`, { token: admin });
    expect(other.status).toBe(200);
    const run = await runScript(user.token, script.slug);
    expect((await waitForExecution(user.token, run.id)).status).toBe('FINISHED');
    const health = await api('GET', '/api-health');
    expect(health.status).toBe(503);
    expect(health.body.detail).toMatch(/keycloak/);

    await outages.start('keycloak');
    const again = await eventually(
      async () => {
        const res = await api('POST', '/auth', { body: { email: user.email, password: user.password } });
        return res.status === 200 ? res : undefined;
      },
      60_000,
      'a login after Keycloak returned',
    );
    expect(again.body).toMatchObject({ user_id: user.id, expires_in: expect.any(Number) });
    const patched = await api('PATCH', '/api/v1/user/me', { token: again.body.access_token, body: { name: 'Back Again' } });
    expect(patched.status).toBe(200);
    expect(patched.body.data.name).toBe('Back Again');
  });
});
