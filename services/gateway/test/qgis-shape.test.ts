/**
 * The representation the QGIS plugin's schemas load: who gets it, and what it keeps of the
 * contract's. The plugin's own schemas load it in test/e2e/qgis-plugin.test.ts.
 */
import type { Response } from 'express';
import { RawJson } from '../src/raw-json';
import { executionFor, fromQgisPlugin, qgisExecution, qgisScript, scriptFor } from '../src/routes/qgis-shape';

/** A response whose request carried `headers`, recording the Vary it was given. */
function responseTo(headers: Record<string, string>): Response & { varied: string[] } {
  const varied: string[] = [];
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { req: { headers: lower }, varied, vary: (field: string) => varied.push(field) } as unknown as Response & { varied: string[] };
}

const script = {
  id: '0d9b2a41-7c3f-4e29-b1c8-55d1f0e2a7c4',
  name: 'land productivity',
  slug: 'land-productivity',
  description: '',
  status: 'SUCCESS',
  public: true,
  user_id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
  created_at: '2026-11-28T05:13:18.000000',
  updated_at: '2026-11-28T05:13:19.000000',
  version: 3,
  runtime: 'python3',
  cpu_limit: 2,
  memory_limit: 1_073_741_824,
  timeout: 600,
};

const execution = {
  id: '3e6f1a52-94d1-4c57-a0c2-7d3b9a1e5f20',
  script_id: script.id,
  user_id: script.user_id,
  status: 'RUNNING',
  progress: 40,
  params: { task_name: 'Kenya' },
  results: null,
  start_date: '2026-11-28T05:13:20.000000',
  end_date: null,
  updated_at: '2026-11-28T05:13:21.000000',
  script_version: 3,
  queued_at: null,
  attempt: 1,
  workflow_id: 'execution-3e6f1a52-94d1-4c57-a0c2-7d3b9a1e5f20',
};

describe('who gets the QGIS plugin’s shape', () => {
  it.each([
    ['QGIS’s User-Agent', { 'User-Agent': 'Mozilla/5.0 QGIS/34400/Ubuntu 24.04.1 LTS' }],
    ['QGIS’s User-Agent with a custom prefix', { 'User-Agent': 'TrendsEarth QGIS/32804/Windows 10' }],
    ['the plugin’s X-TE-Client header', { 'X-TE-Client': 'type=qgis_plugin; version=2.2.4; qgis_version=3.34.0; os=Windows' }],
    ['the header’s short form', { 'X-TE-Client': 'qgis_plugin/2.2.4 (Windows; QGIS 3.34.0)' }],
  ])('%s', (_name, headers) => {
    expect(fromQgisPlugin(responseTo(headers))).toBe(true);
  });

  it.each([
    ['no headers', {}],
    ['python-requests (the script CLI, runtimes)', { 'User-Agent': 'python-requests/2.34.2' }],
    ['a browser', { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36' }],
    ['a word merely containing QGIS', { 'User-Agent': 'myQGIS/1.0' }],
    ['another X-TE-Client type', { 'X-TE-Client': 'type=web; version=1.0' }],
  ])('not %s', (_name, headers) => {
    expect(fromQgisPlugin(responseTo(headers))).toBe(false);
  });

  it('says in Vary that the answer depends on both headers, and changes nothing for other clients', () => {
    const res = responseTo({ 'User-Agent': 'node' });
    expect(executionFor(res, execution)).toBe(execution);
    expect(scriptFor(res, script)).toBe(script);
    expect(res.varied).toEqual(['User-Agent', 'X-TE-Client', 'User-Agent', 'X-TE-Client']);
    const asked = responseTo({});
    fromQgisPlugin(asked);
    expect(asked.varied).toEqual(['User-Agent', 'X-TE-Client']);
  });
});

describe('an execution in the plugin’s shape', () => {
  it('keeps only the keys of the plugin’s job schema', () => {
    expect(qgisExecution(execution)).toEqual({
      id: execution.id,
      script_id: script.id,
      user_id: script.user_id,
      status: 'RUNNING',
      progress: 40,
      params: { task_name: 'Kenya' },
      results: {},
      start_date: execution.start_date,
      end_date: null,
    });
  });

  it('shows CANCELLING as RUNNING (the plugin has no such status); other statuses as they are', () => {
    expect(qgisExecution({ ...execution, status: 'CANCELLING' })?.['status']).toBe('RUNNING');
    for (const status of ['PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLED']) {
      expect(qgisExecution({ ...execution, status })?.['status']).toBe(status);
    }
  });

  it('shows results of another JSON type than an object as an empty object (the plugin loads a mapping only)', () => {
    for (const results of [[1, 2], 'done', 42, true, false, 0, '']) {
      expect(qgisExecution({ ...execution, results })?.['results']).toEqual({});
    }
    // Results held as JSON text (lists and reads write them so): an object's text stays, another's does not.
    const raw = new RawJson();
    const held = { ...execution, results: raw.hold('{"name": "done"}'), params: raw.hold('{"a": 1}') };
    expect(JSON.parse(raw.stringify(qgisExecution(held, raw)))).toMatchObject({ results: { name: 'done' }, params: { a: 1 } });
    const list = new RawJson();
    expect(JSON.parse(list.stringify(qgisExecution({ ...execution, results: list.hold(' [1, 2]') }, list)))).toMatchObject({ results: {} });
    // A text that merely looks like a stand-in is text.
    expect(raw.holdsObject('@gef-raw-0@')).toBe(false);
  });

  it('keeps results that are there, and leaves out params and results the client excluded', () => {
    expect(qgisExecution({ ...execution, results: { type: 'RasterResults' } })?.['results']).toEqual({ type: 'RasterResults' });
    const { params: _p, results: _r, ...excluded } = execution;
    const shaped = qgisExecution(excluded)!;
    expect('params' in shaped).toBe(false);
    expect('results' in shaped).toBe(false);
  });

  it('shapes an embedded script, keeps an embedded user and logs, and a missing script stays null', () => {
    const user = { id: script.user_id, name: 'A', country: 'KE', institution: 'CI' };
    const logs = [{ id: 1, text: 'hi', level: 'INFO', register_date: execution.start_date, execution_id: execution.id, attempt: 1 }];
    const shaped = qgisExecution({ ...execution, script, user, logs })!;
    expect(shaped['script']).toEqual(qgisScript(script));
    expect(shaped['user']).toEqual(user);
    expect(shaped['logs']).toEqual(logs);
    expect(qgisExecution({ ...execution, script: null })!['script']).toBeNull();
    expect(qgisExecution(null)).toBeNull();
  });
});

describe('a script in the plugin’s shape', () => {
  it('keeps the keys of the plugin’s remote script schema, with its reservations', () => {
    expect(qgisScript(script)).toEqual({
      id: script.id,
      name: script.name,
      slug: script.slug,
      description: '',
      status: 'SUCCESS',
      public: true,
      user_id: script.user_id,
      created_at: script.created_at,
      updated_at: script.updated_at,
      cpu_reservation: null,
      cpu_limit: 2,
      memory_reservation: null,
      memory_limit: 1_073_741_824,
    });
  });

  it('shows PENDING as BUILDING, and a fraction of a CPU as no limit (the schema takes whole numbers)', () => {
    expect(qgisScript({ ...script, status: 'PENDING' })?.['status']).toBe('BUILDING');
    expect(qgisScript({ ...script, status: 'FAIL' })?.['status']).toBe('FAIL');
    expect(qgisScript({ ...script, cpu_limit: 0.5 })?.['cpu_limit']).toBeNull();
    expect(qgisScript({ ...script, cpu_limit: null, memory_limit: null })).toMatchObject({ cpu_limit: null, memory_limit: null });
  });

  it('shapes the executions embedded in it', () => {
    const shaped = qgisScript({ ...script, executions: [{ ...execution, status: 'CANCELLING' }] })!;
    expect(shaped['executions']).toEqual([{ ...qgisExecution(execution), status: 'RUNNING' }]);
  });
});
