import { censor, censorSecrets, createLogger, redactedKeys } from '../src/logger';

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

  it('censors class instances as JSON writes them, and errors as errors of the same type', () => {
    const err = Object.assign(new Error('refused'), { token: 'tok-secret', code: 7 });
    const out = censorSecrets({ holder: new Holder('n', 'tok-1'), error: err, date: new Date(0), bytes: Buffer.from('token') });
    expect(out.holder).toEqual({ name: 'n', token: censor });
    expect(out.error).toBeInstanceOf(Error);
    expect(out.error).toMatchObject({ message: 'refused', token: censor, code: 7 });
    expect(out.error.stack).toBe(err.stack);
    expect(err.token).toBe('tok-secret');
    class Refused extends Error {}
    expect(censorSecrets({ e: Object.assign(new Refused('r'), { password: 'p' }) }).e).toBeInstanceOf(Refused);
    expect(out.date).toBeInstanceOf(Date);
    expect(Buffer.isBuffer(out.bytes)).toBe(true);
    const plain = new Error('no secret');
    expect(censorSecrets({ err: plain }).err).toBe(plain);
  });

  it('stops at its depth limit instead of logging what it did not search', () => {
    let deep: Record<string, unknown> = { password: 'deep-secret' };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(JSON.stringify(censorSecrets(deep))).not.toContain('deep-secret');
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic['self'] = cyclic;
    expect(() => JSON.stringify(censorSecrets(cyclic))).not.toThrow();
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

  it('writes an error without secrets as pino does', () => {
    const { logger, lines } = capture();
    logger.error({ err: Object.assign(new Error('plain'), { code: 'E_PLAIN' }) }, 'failed');
    expect(lines()[0]).toMatchObject({ err: { type: 'Error', message: 'plain', code: 'E_PLAIN' } });
    expect(lines()[0]!.err.stack).toContain('plain');
  });
});
