/**
 * CONTRACT §1 and §9 against the real stack: a list asked with `page` or `per_page` answers
 * pages (20 by default, at most 100); asked without either, it answers every match up to
 * 1,000, as the QGIS plugin's job list (`/execution/user?include=script&updated_at=…`) and
 * its script list expect — with 20 it forgot the running jobs past the twentieth.
 */
import { randomBytes } from 'node:crypto';
import { api, login, newUser, strongPassword, superadminCredentials, uniqueEmail } from './helpers/api';
import { cliArchive, upload, waitForStatus } from './helpers/archives';
import { publishScript, runScript, waitForExecution } from './helpers/executions';

jest.setTimeout(300_000);

let user: Awaited<ReturnType<typeof newUser>>;
let script: { id: string; slug: string };
const runs: string[] = [];
const unique = () => randomBytes(4).toString('hex');

beforeAll(async () => {
  user = await newUser('list-pages');
  script = await publishScript(user.token, `List Pages ${unique()}`, 'def run(params, logger):\n    return params.get("n")\n');
  for (let n = 0; n < 23; n++) runs.push((await runScript(user.token, script.slug, { body: { n } })).id);
});

afterAll(async () => {
  // Nothing of this file keeps running into the next one.
  await Promise.all(runs.map((id) => waitForExecution(user.token, id)));
});

const ids = (body: { data: { id: string }[] }) => body.data.map((e) => e.id);

it('answers every execution of the caller without page and per_page, and pages of 20 with page', async () => {
  // Changed since yesterday (UTC): all of them, even when midnight passed since they were made.
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const all = await api('GET', `/api/v1/execution/user?include=script&updated_at=${yesterday}`, { token: user.token });
  expect(all.status).toBe(200);
  expect(all.body).toMatchObject({ page: 1, per_page: 1000, total: 23 });
  expect(new Set(ids(all.body))).toEqual(new Set(runs));
  expect(all.body.data.every((e: { script: { id: string } }) => e.script.id === script.id)).toBe(true);

  const first = await api('GET', '/api/v1/execution/user?page=1', { token: user.token });
  const second = await api('GET', '/api/v1/execution/user?page=2', { token: user.token });
  expect(first.body).toMatchObject({ page: 1, per_page: 20, total: 23 });
  expect(second.body).toMatchObject({ page: 2, per_page: 20, total: 23 });
  expect([...ids(first.body), ...ids(second.body)]).toEqual(ids(all.body));

  const few = await api('GET', '/api/v1/execution?per_page=5', { token: user.token });
  expect(few.body).toMatchObject({ page: 1, per_page: 5, total: 23 });
  expect(ids(few.body)).toEqual(ids(all.body).slice(0, 5));
  expect((await api('GET', '/api/v1/execution?per_page=500', { token: user.token })).body).toMatchObject({ page: 1, per_page: 100, total: 23 });
});

it('answers every script of a filter without page and per_page', async () => {
  const names = Array.from({ length: 21 }, (_, i) => `List Pages Script ${unique()} ${i}`);
  const created = await Promise.all(names.map((name) => upload(user.token, cliArchive(name), `${name}.tar.gz`)));
  expect(created.map((r) => r.status)).toEqual(names.map(() => 200));
  await Promise.all(created.map((r) => waitForStatus(user.token, r.body.data.id)));
  const filter = encodeURIComponent(`user_id=${user.id}`);
  const all = await api('GET', `/api/v1/script?filter=${filter}`, { token: user.token });
  expect(all.body).toMatchObject({ page: 1, per_page: 1000, total: 22 });
  expect(all.body.data).toHaveLength(22);
  const paged = await api('GET', `/api/v1/script?filter=${filter}&page=1`, { token: user.token });
  expect(paged.body).toMatchObject({ page: 1, per_page: 20, total: 22 });
  expect(paged.body.data).toHaveLength(20);
});

it("answers an admin's user list whole without page and per_page, with each user's scripts", async () => {
  const superadmin = superadminCredentials();
  const token = (await login(superadmin.email, superadmin.password)).access_token;
  const email = uniqueEmail('list-pages-admin');
  expect((await api('POST', '/api/v1/user', { token, body: { email, name: 'List Admin', password: strongPassword, role: 'ADMIN' } })).status).toBe(200);
  const adminToken = (await login(email, strongPassword)).access_token;
  const all = await api('GET', '/api/v1/user?include=scripts', { token: adminToken });
  expect(all.status).toBe(200);
  expect(all.body.per_page).toBe(1000);
  expect(all.body.data).toHaveLength(Math.min(all.body.total, 1000));
  // Each user's scripts, 10,000 in all shared between the users listed.
  const mine = all.body.data.find((u: { id: string }) => u.id === user.id);
  expect(mine.scripts).toHaveLength(Math.min(22, Math.floor(10_000 / all.body.data.length)));
});
