import { runInNewContext } from 'node:vm';
import { secretValues } from '../src/config';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { censor, censorSecrets, createLogger, describeError, keepOutOfLogs, maskSecretText, minSecretLength, redactedKeys } from '../src/logger';

/** A logger writing into an array, and the lines it wrote, parsed. */
function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger('test', level, { write: (line: string) => void lines.push(line) });
  return { logger, lines: () => lines.map((l) => JSON.parse(l) as Record<string, any>), raw: () => lines.join('') };
}

class Holder {
  constructor(
    readonly name: string,
    readonly token: string,
  ) {}
}

describe('censorSecrets', () => {
  it('returns what holds no sensitive key as it is, without copying', () => {
    const fields = { reqId: 'r1', method: 'GET', route: '/api/v1/execution/{execution}', status: 200, nested: { list: [1, { a: 'b' }] } };
    expect(censorSecrets(fields)).toBe(fields);
  });

  it.each(redactedKeys)('censors %s at the top, nested, in arrays and in any case', (key) => {
    const fields = { [key]: 's1', a: { [key]: 's2', b: [{ [key.toUpperCase()]: 's3' }] }, keep: 'k' };
    const out = censorSecrets(fields);
    expect(out).toEqual({ [key]: censor, a: { [key]: censor, b: [{ [key.toUpperCase()]: censor }] }, keep: 'k' });
    expect(JSON.stringify(out)).not.toMatch(/s[123]/);
  });

  it('leaves the caller’s objects unchanged, and copies only the way to a secret', () => {
    const untouched = { x: 1 };
    const fields = { req: { headers: { Authorization: 'Bearer abc', host: 'h' } }, other: untouched };
    const out = censorSecrets(fields);
    expect(fields.req.headers.Authorization).toBe('Bearer abc');
    expect(out.req.headers).toEqual({ Authorization: censor, host: 'h' });
    expect(out.other).toBe(untouched);
  });

  it('censors class instances as JSON writes them, what a toJSON returns, and errors', () => {
    const err = Object.assign(new Error('refused'), { token: 'tok-secret', code: 7 });
    const out = censorSecrets({ holder: new Holder('n', 'tok-1'), error: err, date: new Date(0), bytes: Buffer.from('token'), cfg: { toJSON: () => ({ password: 'pj' }) } });
    expect(out.holder).toEqual({ name: 'n', token: censor });
    expect(out.error).toEqual({ token: censor, code: 7 });
    expect(out.error.message).toBe('refused');
    expect(out.error.stack).toBe(err.stack);
    expect(err.token).toBe('tok-secret');
    expect(out.date).toBeInstanceOf(Date);
    expect(Buffer.isBuffer(out.bytes)).toBe(true);
    expect(JSON.stringify(out.cfg)).toBe(`{"password":"${censor}"}`);
    const plain = new Error('no secret');
    expect(censorSecrets({ err: plain }).err).toBe(plain);
  });

  it('makes a cycle [Circular], and stays small and quick on objects that point back at themselves', () => {
    const cyclic: Record<string, unknown> = { name: 'c' };
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) cyclic[key] = cyclic;
    const started = performance.now();
    const out = censorSecrets({ cyclic, password: 'p' });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(JSON.stringify(out).length).toBeLessThan(200);
    expect(out.cyclic).toEqual({ name: 'c', a: '[Circular]', b: '[Circular]', c: '[Circular]', d: '[Circular]', e: '[Circular]', f: '[Circular]' });
    // A copy never holds the original it was made from, whose secret it would let through.
    const holder: Record<string, unknown> = { token: 'held' };
    holder['self'] = holder;
    expect(JSON.stringify(censorSecrets(holder))).not.toContain('held');
    const shared = { token: 't' };
    expect(censorSecrets({ x: shared, y: shared })).toEqual({ x: { token: censor }, y: { token: censor } });
  });

  it('stops at its depth limit instead of logging what it did not search', () => {
    let deep: Record<string, unknown> = { password: 'deep-secret' };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(JSON.stringify(censorSecrets(deep))).not.toContain('deep-secret');
  });

  it('searches objects down to depth 8 and writes deeper ones as [too deep], errors included', () => {
    const nest = (levels: number, inner: unknown): unknown => (levels === 0 ? inner : { next: nest(levels - 1, inner) });
    const at = (value: unknown, levels: number): unknown => (levels === 0 ? value : at((value as { next: unknown }).next, levels - 1));
    expect(at(censorSecrets(nest(8, { password: 'p', keep: 1 })), 8)).toEqual({ password: censor, keep: 1 });
    expect(at(censorSecrets(nest(9, { password: 'p' })), 9)).toBe('[too deep]');
    expect(at(censorSecrets(nest(9, 'a string')), 9)).toBe('a string');
    const aggregate = new AggregateError([Object.assign(new Error('inner'), { token: 'aggregate-secret' })], 'outer');
    const censored = at(censorSecrets(nest(8, aggregate)), 8) as { errors: unknown; message: string };
    expect(censored.message).toBe('outer');
    expect(JSON.stringify(censored.errors)).not.toContain('aggregate-secret');
  });
});

describe('createLogger', () => {
  it('writes no secret from fields, bindings or logged errors, and keeps the rest', () => {
    const { logger, lines, raw } = capture();
    logger.info({ password: 'pw-1', user: { email: 'a@example.org', refresh_token: 'rt-1' }, headers: { cookie: 'c-1' } }, 'login');
    logger.child({ reqId: 'r-9', token: 'child-token' }).warn({ DATABASE_URL: 'postgres://u:dbpw@h/db' }, 'db');
    logger.error(Object.assign(new Error('upstream'), { client_secret: 'cs-1' }), 'failed');
    logger.error({ err: Object.assign(new Error('nested'), { authorization: 'Basic xyz' }) }, 'failed again');
    for (const secret of ['pw-1', 'rt-1', 'c-1', 'child-token', 'dbpw', 'cs-1', 'Basic xyz']) expect(raw()).not.toContain(secret);
    const [first, second, third, fourth] = lines();
    expect(first).toMatchObject({ msg: 'login', password: censor, user: { email: 'a@example.org', refresh_token: censor }, service: 'test' });
    expect(second).toMatchObject({ msg: 'db', reqId: 'r-9', token: censor, DATABASE_URL: censor });
    expect(third).toMatchObject({ msg: 'failed', err: { type: 'Error', message: 'upstream', client_secret: censor } });
    expect(third!.err.stack).toContain('upstream');
    expect(fourth).toMatchObject({ err: { message: 'nested', authorization: censor } });
  });

  it('censors errors of every kind as pino writes them, with their type, message and stack', () => {
    const { logger, lines, raw } = capture();
    class Refused extends Error {}
    const vmError = runInNewContext('Object.assign(new Error("sandboxed"), { token: "vm-secret" })') as Error;
    const aggregate = new AggregateError([Object.assign(new Error('inner'), { password: 'agg-secret' })], 'several');
    const abort = Object.assign(new DOMException('stopped', 'AbortError'), { token: 'dom-secret' });
    logger.error({ err: Object.assign(new Refused('no'), { token: 'sub-secret' }) }, 'a');
    logger.error({ err: vmError }, 'b');
    logger.error({ err: aggregate }, 'c');
    logger.error({ err: abort }, 'd');
    logger.error({ error: Object.assign(new Error('x'), { cause: { token: 'cause-secret' } }) }, 'e');
    for (const secret of ['sub-secret', 'vm-secret', 'agg-secret', 'dom-secret', 'cause-secret']) expect(raw()).not.toContain(secret);
    const [a, b, c, d] = lines();
    expect(a!.err).toMatchObject({ type: 'Refused', message: 'no', token: censor });
    expect(b!.err).toMatchObject({ type: 'Error', message: 'sandboxed', token: censor });
    expect(b!.err.stack).toContain('sandboxed');
    expect(c!.err).toMatchObject({ type: 'AggregateError', message: 'several', aggregateErrors: [{ message: 'inner', password: censor }] });
    expect(d!.err).toMatchObject({ type: 'DOMException', message: 'stopped', token: censor });
  });

  it('censors what a message interpolates, and the bindings of children at any depth', () => {
    const { logger, raw, lines } = capture();
    logger.info('login %o', { password: 'interp-1' });
    logger.info({ at: 1 }, 'pair %j and %s', { a: { token: 'interp-2' } }, 'plain');
    const child = logger.child({ user: { Password: 'bind-1' }, Token: 'bind-2' });
    child.child({ auth: { authorization: 'bind-3' } }).info('from a grandchild');
    child.setBindings({ cookie: 'bind-4' });
    child.info('after setBindings');
    for (const secret of ['interp-1', 'interp-2', 'bind-1', 'bind-2', 'bind-3', 'bind-4']) expect(raw()).not.toContain(secret);
    expect(lines()[1]!.msg).toContain('plain');
    expect(lines()[2]).toMatchObject({ user: { Password: censor }, Token: censor, auth: { authorization: censor } });
  });

  it('leaves out a field that cannot be searched, and keeps the line’s other fields', () => {
    const { logger, lines } = capture();
    logger.info({ reqId: 'r1', bad: { toJSON: () => { throw new Error('no JSON'); } } }, 'still written');
    expect(lines()[0]).toMatchObject({ msg: 'still written', reqId: 'r1', bad: '[left out: no JSON]' });
  });

  it('censors an object given as the message, and the fields of objects whose toJSON hides them', () => {
    const { logger, raw, lines } = capture();
    class Entity {
      token = 'entity-secret';
      name = 'n';
      toJSON() {
        return { name: this.name };
      }
    }
    logger.info({ a: 1 }, { token: 'msg-secret' } as never);
    logger.info(undefined, { token: 'msg-secret-2' } as never);
    logger.info(new Entity(), 'an entity');
    logger.child(new Entity() as never).info('a child of an entity');
    logger.info({ data: { message: 'm', stack: 's', toJSON: () => ({ token: 'json-secret' }) } }, 'error-like with toJSON');
    for (const secret of ['msg-secret', 'entity-secret', 'json-secret']) expect(raw()).not.toContain(secret);
    expect(lines()[2]).toMatchObject({ msg: 'an entity', name: 'n', token: censor });
  });

  it('writes an error without secrets as pino does', () => {
    const { logger, lines } = capture();
    logger.error({ err: Object.assign(new Error('plain'), { code: 'E_PLAIN' }) }, 'failed');
    expect(lines()[0]).toMatchObject({ err: { type: 'Error', message: 'plain', code: 'E_PLAIN' } });
    expect(lines()[0]!.err.stack).toContain('plain');
  });

  it('masks JWTs and the configured secrets wherever they are in a line: message text, %s, errors, children with formatters of their own', () => {
    const { logger, raw, lines } = capture();
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjF9.c2lnbmF0dXJlLXBhcnQ';
    keepOutOfLogs('configured-secret-1234', 'quote"and\\slash-secret');
    logger.info(`refresh failed for ${jwt}`);
    logger.warn('connect failed: %s', new Error('auth with configured-secret-1234 refused'));
    logger.error({ err: new Error(`Bearer ${jwt} rejected`) }, 'rejected');
    logger.child({ a: 1 }, { formatters: { log: (o: object) => o } }).info({ t: `x ${jwt} y` }, 'quote"and\\slash-secret in text');
    expect(raw()).not.toContain('configured-secret-1234');
    expect(raw()).not.toContain('slash-secret');
    expect(raw()).not.toContain('c2lnbmF0dXJlLXBhcnQ');
    const [first, second, third, fourth] = lines();
    expect(first!.msg).toBe(`refresh failed for ${censor}`);
    expect(second!.msg).toContain(censor);
    expect(third!.err.message).toBe(`Bearer ${censor} rejected`);
    expect(fourth).toMatchObject({ msg: `${censor} in text`, t: `x ${censor} y` });
  });

  it('leaves short values and lines without secrets as they are', () => {
    keepOutOfLogs('short', undefined, '');
    const line = '{"msg":"a short word, eyJ alone and eyJabc.def"}';
    expect(maskSecretText(line)).toBe(line);
    expect('short'.length).toBeLessThan(minSecretLength);
  });
});

describe('secretValues', () => {
  it('finds settings named as secrets and the passwords in URLs, raw and decoded', () => {
    expect(
      secretValues({
        KEYCLOAK_CLIENT_SECRET: 'kc',
        GEF_ADMIN_PASSWORD: 'admin-pw',
        DATABASE_URL: 'postgres://gef:p%40ss-word-123@db:5432/gef',
        SMTP_URL: 'smtp://mail.example.org:25',
        PUBLIC_URL: 'https://user@example.org/',
        PASSWORD_LINK_URL: 'https://app.example.org/reset-password',
        LOG_LEVEL: 'info',
        PORT: 3000,
      }).sort(),
    ).toEqual(['admin-pw', 'kc', 'p%40ss-word-123', 'p@ss-word-123', 'postgres://gef:p%40ss-word-123@db:5432/gef'].sort());
  });
});


describe('database errors', () => {
  /** An error as the ORM throws it: the statement with its values, then what PostgreSQL said, and pg's fields. */
  const databaseError = () => {
    const pgError = Object.assign(
      new Error(
        `insert into run_spec (requirements, params) values ('--extra-index-url https://u:idx-Tok3n@pypi.corp/simple', '{"k":"p-s3cret"}') - duplicate key value violates unique constraint "run_spec_pkey"`,
      ),
      { severity: 'ERROR', code: '23505', detail: 'Key (params)=(p-s3cret) already exists.', constraint: 'run_spec_pkey', table: 'run_spec', routine: '_bt_check_unique' },
    );
    return new UniqueConstraintViolationException(pgError);
  };

  it('are logged without the statement or the values it held, with what names the failure', () => {
    const { logger, raw, lines } = capture();
    logger.error({ err: databaseError() }, 'unhandled error in RPC');
    logger.warn({ err: describeError(databaseError()) }, 'the database refused a value of the request');
    expect(raw()).not.toMatch(/idx-Tok3n|p-s3cret|insert into/);
    const [first, second] = lines();
    expect(first!['err']).toMatchObject({ type: 'UniqueConstraintViolationException', message: 'duplicate key value violates unique constraint "run_spec_pkey"', code: '23505', constraint: 'run_spec_pkey', table: 'run_spec' });
    expect(first!['err'].stack).toMatch(/^UniqueConstraintViolationException: duplicate key value[^\n]*\n {4}at /);
    expect(second!['err']).toBe('UniqueConstraintViolationException: duplicate key value violates unique constraint "run_spec_pkey"');
  });

  it('keep the statement out of the stack even when a value in it looks like a frame', () => {
    const pgError = Object.assign(new Error(`insert into execution_log (text) values ('Error: x\n    at f (/app/p-s3cret.js:1:1)') - value too long`), {
      severity: 'ERROR',
      code: '22001',
      routine: 'varchar',
    });
    const { logger, raw } = capture();
    logger.error({ err: new UniqueConstraintViolationException(pgError) }, 'failed');
    expect(raw()).not.toMatch(/p-s3cret|insert into/);
    expect(raw()).toMatch(/value too long/);
  });

  it('leave other errors as they are', () => {
    expect(describeError(new Error('a - b'))).toBe('Error: a - b');
  });
});
