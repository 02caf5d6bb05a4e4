import { z } from 'zod';
import { ConfigError, baseConfigShape, connectionLimits, databaseConfigShape, databaseTimeouts, parseConfig, port } from '../src/config';

const shape = { ...baseConfigShape, PORT: port(3000), SECRET: z.string().min(1).default('dev-secret') };
const secrets = [{ name: 'SECRET', devValue: 'dev-secret' }];

describe('parseConfig', () => {
  it('applies defaults, treating empty strings as unset', () => {
    const config = parseConfig(shape, { PORT: '', LOG_LEVEL: 'debug' }, secrets);
    expect(config.PORT).toBe(3000);
    expect(config.LOG_LEVEL).toBe('debug');
    expect(config.GEF_ENV).toBe('development');
    expect(config.TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
  });

  it('names every bad variable', () => {
    expect(() => parseConfig(shape, { PORT: '70000', LOG_LEVEL: 'loud' })).toThrow(ConfigError);
    try {
      parseConfig(shape, { PORT: '70000', LOG_LEVEL: 'loud' });
    } catch (err) {
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toContain('PORT');
      expect(problems).toContain('LOG_LEVEL');
    }
  });

  it('refuses development secrets in production', () => {
    expect(() => parseConfig(shape, { GEF_ENV: 'production' }, secrets)).toThrow(/SECRET: must be set/);
    expect(() => parseConfig(shape, { GEF_ENV: 'production', SECRET: 'dev-secret' }, secrets)).toThrow(ConfigError);
    // As the setting is read: with blanks around it, or as one key of a list in rotation.
    for (const SECRET of ['dev-secret ', ' dev-secret', 'a-real-one,dev-secret', 'dev-secret, a-real-one', '   ']) {
      expect(() => parseConfig(shape, { GEF_ENV: 'production', SECRET }, secrets)).toThrow(/SECRET: must be set/);
    }
    expect(parseConfig(shape, { GEF_ENV: 'production', SECRET: 'a-real-one' }, secrets).SECRET).toBe('a-real-one');
  });

  it('does not put secret values in its error messages', () => {
    try {
      parseConfig(shape, { GEF_ENV: 'production', SECRET: 'dev-secret' }, secrets);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(String(err)).not.toContain('dev-secret');
    }
  });
});

describe('the database time limits', () => {
  it('are 25 s for a statement (within the 30 s an RPC is waited for) and 60 s idle in a transaction unless set, sent in milliseconds; 0 sends none', () => {
    const limits = (env: Record<string, string>) => connectionLimits(databaseTimeouts(parseConfig(databaseConfigShape, env)));
    expect(limits({})).toEqual({ statement_timeout: 25_000, idle_in_transaction_session_timeout: 60_000 });
    expect(limits({ DB_STATEMENT_TIMEOUT_SECONDS: '5', DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: '0' })).toEqual({ statement_timeout: 5000 });
    expect(limits({ DB_STATEMENT_TIMEOUT_SECONDS: '0', DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: '0' })).toEqual({});
    expect(() => parseConfig(databaseConfigShape, { DB_STATEMENT_TIMEOUT_SECONDS: '-1' })).toThrow(/DB_STATEMENT_TIMEOUT_SECONDS/);
  });
});
