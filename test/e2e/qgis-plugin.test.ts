/**
 * The Trends.Earth QGIS plugin reads executions and scripts with marshmallow schemas that
 * refuse keys they do not know and statuses outside their enums (qgis-plugin/load.py has
 * their fields). Requests that come from QGIS (its User-Agent) or name the plugin
 * (`X-TE-Client`) get what those schemas load; the answers every other client gets, the
 * contract's, are refused by them. The calls are the plugin's own: a run with its task
 * name and notes, the job list with `include=script`, one job, the script list.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pythonVenv } from '../harness/python-venv';
import { api, newUser } from './helpers/api';
import { cliArchive, upload } from './helpers/archives';
import { publishScript, waitForExecution } from './helpers/executions';

jest.setTimeout(300_000);

const pluginDir = join(__dirname, 'qgis-plugin');
const qgis = { 'User-Agent': 'Mozilla/5.0 QGIS/34400/Ubuntu 24.04.1 LTS' };
const teClient = { 'X-TE-Client': 'type=qgis_plugin; version=2.2.4; qgis_version=3.34.0; os=Windows' };

let python: string;
let user: Awaited<ReturnType<typeof newUser>>;
let script: { id: string; slug: string };

/** What the plugin's schemas say of each answer: null when it loaded, else marshmallow's messages. */
function load(answers: { jobs?: unknown[]; scripts?: unknown[] }): Promise<{ jobs: unknown[]; scripts: unknown[] }> {
  return new Promise((resolve, reject) => {
    const child = execFile(python, [join(pluginDir, 'load.py')], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`load.py: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
    child.stdin!.end(JSON.stringify(answers));
  });
}

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await api('GET', path, { token: user.token, headers });
  expect(res.status).toBe(200);
  return res;
}

beforeAll(async () => {
  python = join(await pythonVenv('qgis-plugin', ['-r', join(pluginDir, 'requirements.txt')]), 'bin', 'python');
  user = await newUser('qgis');
  script = await publishScript(user.token, `qgis-${Date.now().toString(36)}`, 'def run(params, logger):\n    logger.info("hello")\n    return {"name": "done"}\n');
});

it('a run from the plugin, the plugin’s job list, one job and the script list all load in its schemas', async () => {
  const body = { task_name: 'Kenya productivity', task_notes: 'from QGIS', year_initial: 2001, year_final: 2015 };
  const run = await api('POST', `/api/v1/script/${script.id}/run`, { token: user.token, body, headers: qgis });
  expect(run.status).toBe(200);
  expect(run.headers.get('vary') ?? '').toMatch(/User-Agent/i);
  const id: string = run.body.data.id;
  expect(run.body.data).toMatchObject({ id, status: 'PENDING', progress: 0, params: body, results: {}, end_date: null });
  await waitForExecution(user.token, id);

  // The contract's answers first, so a page kept for them is there when the plugin asks.
  const query = `include=script&user_id=${user.id}&updated_at=${new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)}`;
  const contractList = await get(`/api/v1/execution?${query}`);
  expect(contractList.body.data[0]).toMatchObject({ id, attempt: 1, script_version: 1 });
  const list = await get(`/api/v1/execution?${query}`, qgis);
  const mine = await get('/api/v1/execution/user?include=script&page=1&per_page=100', teClient);
  const one = await get(`/api/v1/execution/${id}`, qgis);
  const scripts = await get('/api/v1/script', qgis);

  const me = await get('/api/v1/user/me?include=scripts', qgis);
  expect(list.headers.get('vary') ?? '').toMatch(/X-TE-Client/i);
  expect(list.body.data.map((j: { id: string }) => j.id)).toEqual([id]);
  expect(list.body.data[0]).toMatchObject({ status: 'FINISHED', progress: 100, results: { name: 'done' }, script: { id: script.id, slug: script.slug } });
  expect(list.body.data[0]).not.toHaveProperty('attempt');
  expect(mine.body).toMatchObject({ page: 1, per_page: 100, total: 1 });
  expect(scripts.body.data.map((s: { id: string }) => s.id)).toContain(script.id);

  const loaded = await load({
    jobs: [run.body.data, ...list.body.data, ...mine.body.data, one.body.data],
    scripts: [...scripts.body.data, ...me.body.data.scripts],
  });
  expect(loaded.jobs).toEqual([null, null, null, null]);
  expect(me.body.data.scripts.map((s: { id: string }) => s.id)).toContain(script.id);
  expect(loaded.scripts).toEqual([...scripts.body.data, ...me.body.data.scripts].map(() => null));
});

it('the contract’s answers, which every other client gets, are refused by the plugin’s schemas', async () => {
  const [jobs, scripts] = await Promise.all([get('/api/v1/execution/user?include=script'), get('/api/v1/script')]);
  expect(jobs.body.data[0]).toHaveProperty('updated_at');
  expect(scripts.body.data[0]).toHaveProperty('version');
  const loaded = await load({ jobs: jobs.body.data, scripts: scripts.body.data });
  expect(loaded.jobs[0]).toMatchObject({ updated_at: ['Unknown field.'], attempt: ['Unknown field.'] });
  expect(loaded.scripts[0]).toMatchObject({ version: ['Unknown field.'], runtime: ['Unknown field.'] });
});

it('a script just uploaded loads in the plugin’s schemas while it builds (the plugin has no PENDING)', async () => {
  const name = `qgis-upload-${Date.now().toString(36)}`;
  const res = await upload(user.token, cliArchive(name), `${name}.tar.gz`);
  expect(res.status).toBe(200);
  expect(res.body.data.status).toBe('PENDING');
  const seen = await get(`/api/v1/script/${res.body.data.id}`, qgis);
  expect(['BUILDING', 'SUCCESS']).toContain(seen.body.data.status);
  expect((await load({ scripts: [seen.body.data] })).scripts).toEqual([null]);
});
