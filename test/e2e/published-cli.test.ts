/**
 * The Trends.Earth script CLI itself (`trends-earth-cli` as published on PyPI, command
 * `trends`) against the real stack: a USER creates a project from the CLI's skeleton, logs
 * in, publishes it publicly, reads its info, publishes a new version over it and downloads
 * it; the script then runs through the platform's runtime as the CLI's skeleton expects.
 * The CLI's own output is what its user sees, so it is checked word for word. (Its `logs`
 * command reads a script's `logs` without asking for them with `include=logs`, which no
 * server sends, so it is left out.)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, newUser } from './helpers/api';
import { waitForStatus } from './helpers/archives';
import { executionLog, runScript, waitForExecution } from './helpers/executions';
import { installTecli, trends } from './helpers/tecli';

jest.setTimeout(300_000);

let python: string;
let user: Awaited<ReturnType<typeof newUser>>;
let other: Awaited<ReturnType<typeof newUser>>;
let home: string;
let work: string;
const project = `tecli-${Date.now().toString(36)}`;

/** The project's configuration.json, as the CLI keeps it. */
const configuration = (): { name: string; id?: string } => JSON.parse(readFileSync(join(work, project, 'configuration.json'), 'utf8'));

beforeAll(async () => {
  python = await installTecli();
  [user, other] = await Promise.all([newUser('tecli'), newUser('tecli-other')]);
  home = mkdtempSync(join(tmpdir(), 'tecli-home-'));
  work = mkdtempSync(join(tmpdir(), 'tecli-work-'));
});

it('creates a project, and refuses to publish it before a login', async () => {
  expect(await trends(python, ['create'], { cwd: work, home, answers: [project] })).toContain('Project created successfully');
  expect(configuration()).toEqual({ name: project });
  const out = await trends(python, ['publish'], { cwd: join(work, project), home });
  expect(out).toContain('Do you need login');
  expect(out).toContain('Error publishing the script');
  expect(configuration().id).toBeUndefined();
});

it('logs in with a wrong password, then with the right one', async () => {
  expect(await trends(python, ['login'], { cwd: work, home, answers: [user.email, 'Wrong-Passw0rd!'] })).toContain('Error with the user');
  expect(readFileSync(join(home, '.gef.yml'), 'utf8')).not.toContain('JWT');
  expect(await trends(python, ['login'], { cwd: work, home, answers: [user.email.toUpperCase(), user.password] })).toContain('You are logged');
  const token = /JWT: (\S+)/.exec(readFileSync(join(home, '.gef.yml'), 'utf8'))?.[1];
  expect(token).toBeDefined();
  const me = await api('GET', '/api/v1/user/me', { token });
  expect(me.status).toBe(200);
  expect(me.body.data.id).toBe(user.id);
});

it('publishes the project publicly: the script builds, and another user sees it', async () => {
  const out = await trends(python, ['publish', '--public'], { cwd: join(work, project), home });
  expect(out).toContain('Script published successfully');
  const id = configuration().id!;
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const { script } = await waitForStatus(user.token, id);
  expect(script).toMatchObject({ id, name: project, slug: project, status: 'SUCCESS', public: true, user_id: user.id, version: 1 });
  const seen = await api('GET', `/api/v1/script/${project}`, { token: other.token });
  expect(seen.status).toBe(200);
  expect(seen.body.data.id).toBe(id);
});

it('shows the script’s info', async () => {
  const out = await trends(python, ['info'], { cwd: join(work, project), home });
  const id = configuration().id!;
  expect(out).toContain(`Id: ${id}`);
  expect(out).toContain(`Slug: ${project}`);
  expect(out).toContain('Status: SUCCESS');
  expect(out).toMatch(/CreatedAt: \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\n/);
});

it('publishes a new version over it, and downloads exactly that version', async () => {
  const dir = join(work, project);
  const main = `def run(params, logger):\n    logger.info("version two of ${project}")\n    return {"greeting": "hello " + params.get("name", "nobody")}\n`;
  writeFileSync(join(dir, 'src', 'main.py'), main);
  expect(await trends(python, ['publish', '--overwrite'], { cwd: dir, home })).toContain('Script published successfully');
  const id = configuration().id!;
  const { script } = await waitForStatus(user.token, id);
  expect(script).toMatchObject({ id, slug: project, status: 'SUCCESS', version: 2 });

  expect(await trends(python, ['download', id], { cwd: work, home })).toContain('Script downloaded successfully');
  expect(readFileSync(join(work, id, 'src', 'main.py'), 'utf8')).toBe(main);
  expect(JSON.parse(readFileSync(join(work, id, 'configuration.json'), 'utf8'))).toEqual({ name: project, id });
});

it('runs the published script with the parameters it is given', async () => {
  const id = configuration().id!;
  const started = await runScript(other.token, project, { query: '?name=tecli' });
  const done = await waitForExecution(other.token, started.id);
  expect(done).toMatchObject({ script_id: id, status: 'FINISHED', results: { greeting: 'hello tecli' }, script_version: 2 });
  expect((await executionLog(other.token, started.id)).map((line) => line.text)).toContain(`version two of ${project}`);
});
