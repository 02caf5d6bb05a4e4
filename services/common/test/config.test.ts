import { z } from 'zod';
import { ConfigError, baseConfigShape, parseConfig, port } from '../src/config';

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
