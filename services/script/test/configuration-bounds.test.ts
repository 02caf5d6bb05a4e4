import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { InvalidArgument, maxJsonValueDepth } from '@gef/common';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { script } from '@gef/protos';
import { parseConfiguration } from '../src/domain/configuration';
import { caller, createMessages, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { cliLayout, gzip, tar } from './support/tar-writer';

/** A params_schema nesting `times` object properties: two levels of JSON each, one more for the top. */
function nestedSchema(times: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < times; i++) schema = { type: 'object', properties: { a: schema } };
  return schema;
}
/** JSON nested `levels` deep, objects and arrays in turn (a scalar is 0 levels). */
function nested(levels: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
  return v;
}

const deepest = Math.floor((maxJsonValueDepth - 1) / 2); // 15 properties: 31 levels; 16 would be 33

describe('configuration.json: depth', () => {
  it(`takes values nested ${maxJsonValueDepth} levels`, () => {
    const c = parseConfiguration(JSON.stringify({ name: 'x', params_schema: nestedSchema(deepest), extra: nested(maxJsonValueDepth) }));
    expect(c.paramsSchema).toEqual(nestedSchema(deepest));
    expect(c.raw['extra']).toEqual(nested(maxJsonValueDepth));
  });

  it.each([
    ['params_schema one level too deep', { name: 'x', params_schema: nestedSchema(deepest + 1) }, `'params_schema' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`],
    ['params_schema nested 130 properties deep', { name: 'x', params_schema: nestedSchema(130) }, `'params_schema' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`],
    ['another key nested too deep', { name: 'x', extra: nested(maxJsonValueDepth + 1) }, `'extra' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`],
    ['an array nested 2,000 deep', `{"name": "x", "environment": ${'['.repeat(2_000)}${']'.repeat(2_000)}}`, `'environment' is nested deeper than ${maxJsonValueDepth} levels`],
  ])('refuses %s (invalid_archive), naming the field', (_name, config, message) => {
    let error: unknown;
    try {
      parseConfiguration(typeof config === 'string' ? config : JSON.stringify(config));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidArgument);
    expect((error as InvalidArgument).reason).toBe('invalid_archive');
    expect((error as Error).message).toContain(`Invalid configuration.json: ${message}`);
  });
});

// The upload path over a real PostgreSQL: a refused configuration leaves nothing; the deepest
// schema taken lists and reads.
describe('uploads of deep configurations', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_script_config_bounds_test');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const upload = (userId: string, config: Record<string, unknown>) =>
    f.client.createScript(createMessages({ caller: caller(userId), fileName: 'x.tar.gz' }, gzip(tar(cliLayout(config)))));

  async function failure(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
    try {
      await promise;
    } catch (err) {
      const e = ConnectError.from(err);
      return { code: e.code, message: e.rawMessage };
    }
    throw new Error('expected the call to fail');
  }

  it('refuses a params_schema or another value nested too deep, storing nothing; the deepest one taken lists and reads', async () => {
    const userId = randomUUID();
    expect(await failure(upload(userId, { name: 'Deep Schema', params_schema: nestedSchema(130) }))).toEqual({
      code: Code.InvalidArgument,
      message: `Invalid configuration.json: 'params_schema' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`,
    });
    expect(await failure(upload(userId, { name: 'Deep Extra', extra: nested(200) }))).toEqual({
      code: Code.InvalidArgument,
      message: `Invalid configuration.json: 'extra' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`,
    });
    expect(await f.orm.em.fork().execute('select id from script where user_id = ?', [userId])).toEqual([]);

    const created = (await upload(userId, { name: 'Deepest Schema', params_schema: nestedSchema(deepest) })).script!;
    expect(created.paramsSchema).toEqual(nestedSchema(deepest));
    const listed = await f.client.listScripts(create(script.ListScriptsRequestSchema, { caller: caller(userId) }));
    expect(listed.scripts.map((s) => [s.slug, s.paramsSchema])).toEqual([['deepest-schema', nestedSchema(deepest)]]);
    const admin = await f.client.listScripts(create(script.ListScriptsRequestSchema, { caller: caller(randomUUID(), 'ADMIN'), userId }));
    expect(admin.scripts.map((s) => s.slug)).toEqual(['deepest-schema']);
    const read = await f.client.getScript(create(script.GetScriptRequestSchema, { idOrSlug: 'deepest-schema', caller: caller(userId) }));
    expect(read.script?.paramsSchema).toEqual(nestedSchema(deepest));
  });
});
