/**
 * The limits CONTRACT §2 names per client and per account: refreshes, registrations and
 * runs, counted before any service is called (the fakes answer nothing useful: what matters
 * is which request is refused 429).
 */
import { SignJWT } from 'jose';
import { quietCancelledCalls, startSigningKeycloak, type SigningKeycloak } from './scripts-fakes';
import { request, startFakeService, startGateway, type FakeService, type RunningGateway } from './support';

let gateway: RunningGateway;
let keycloak: SigningKeycloak;
let user: FakeService;

beforeAll(async () => {
  quietCancelledCalls();
  [keycloak, user] = await Promise.all([startSigningKeycloak(), startFakeService('user')]);
  gateway = await startGateway({
    USER_SERVICE_URL: user.url,
    SCRIPT_SERVICE_URL: user.url,
    EXECUTION_SERVICE_URL: user.url,
    KEYCLOAK_URL: keycloak.url,
    RATE_LIMIT_REFRESH_PER_CLIENT: '1000/60',
    RATE_LIMIT_REFRESH_PER_SESSION: '2/60',
    RATE_LIMIT_REGISTER_PER_CLIENT: '1000/3600',
    RATE_LIMIT_REGISTER_PER_ACCOUNT: '2/3600',
    RATE_LIMIT_RUN_PER_ACCOUNT: '1000/60',
    RATE_LIMIT_RUN_PER_CLIENT: '3/60',
  });
});

afterAll(async () => {
  await gateway.close();
  await Promise.all([keycloak.stop(), user.stop()]);
});

const post = (path: string, body: unknown, token?: string) =>
  request(gateway.url, path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

/** A refresh token of `sub`'s session `sid`, as Keycloak's are JWTs (signed with a key the gateway never sees). */
const refreshToken = (sub: string, sid = `s-${sub.toLowerCase()}`) =>
  new SignJWT({ typ: 'Refresh', sid }).setProtectedHeader({ alg: 'HS512' }).setSubject(sub).setIssuedAt().setExpirationTime('30m').sign(new TextEncoder().encode('k'.repeat(64)));

const refused = (res: { status: number; headers: Record<string, unknown>; json: () => any }) => ({
  status: res.status,
  error: res.status === 429 ? res.json().error : undefined,
  retryAfter: res.status === 429 ? typeof res.headers['retry-after'] : undefined,
});

describe('rate limits per account and per client', () => {
  it('counts refreshes per account session (the subject and session its refresh token names)', async () => {
    const a = '0c7f7d1e-52a4-4a77-9d8e-6a4d1f0b2c31';
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post('/auth/refresh', { refresh_token: await refreshToken(a) })).status);
    expect(statuses.slice(0, 2)).not.toContain(429);
    expect(refused(await post('/auth/refresh', { refresh_token: await refreshToken(a.toUpperCase()) }))).toEqual({ status: 429, error: 'rate_limited', retryAfter: 'string' });
    expect(statuses[2]).toBe(429);
    // Another account's refreshes, another session's of the same account (tokens naming the
    // account but not knowing its session), and tokens that name none, go on.
    expect((await post('/auth/refresh', { refresh_token: await refreshToken('5b2a9c0e-1f3d-4e6a-8b7c-9d0e1f2a3b4c') })).status).not.toBe(429);
    for (let i = 0; i < 3; i++) expect((await post('/auth/refresh', { refresh_token: await refreshToken(a, `forged-${i}`) })).status).not.toBe(429);
    for (let i = 0; i < 3; i++) expect((await post('/auth/refresh', { refresh_token: 'not-a-jwt' })).status).not.toBe(429);
  });

  it('counts registrations per e-mail address, in any case', async () => {
    const body = (email: string) => ({ email, name: 'Someone', password: 'A-long-enough-Passw0rd!' });
    // Malformed bodies naming an address do not use up its share.
    for (let i = 0; i < 3; i++) expect((await post('/api/v1/user', { email: 'taken@example.org', name: 42 })).status).toBe(400);
    expect((await post('/api/v1/user', body('taken@example.org'))).status).not.toBe(429);
    expect((await post('/api/v1/user', body(' Taken@Example.org '))).status).not.toBe(429);
    expect(refused(await post('/api/v1/user', body('TAKEN@example.org')))).toEqual({ status: 429, error: 'rate_limited', retryAfter: 'string' });
    expect((await post('/api/v1/user', body('other@example.org'))).status).not.toBe(429);
  });

  it('counts runs per client, whichever accounts send them', async () => {
    const tokens = await Promise.all(['1b4e28ba-2fa1-41d2-883f-0016d3cca427', '6f1d4c3e-8a55-4f0a-9c55-2b7e5a4a9d10', '3e6f1a52-94d1-4c57-a0c2-7d3b9a1e5f20'].map((id) => keycloak.token(id)));
    for (const token of tokens) expect((await post('/api/v1/script/some-script/run', {}, token)).status).not.toBe(429);
    const fourth = await post('/api/v1/script/some-script/run', {}, await keycloak.token('0d9b2a41-7c3f-4e29-b1c8-55d1f0e2a7c4'));
    expect(refused(fourth)).toEqual({ status: 429, error: 'rate_limited', retryAfter: 'string' });
  });
});
