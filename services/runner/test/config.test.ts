import { ConfigError } from '@gef/common';
import { loadConfig } from '../src/config';

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
const realKey = 'a-real-runner-key-0123456789';

describe('runner configuration', () => {
  it('takes the defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      RUN_LOG_MAX_LINES: 1_000_000,
      RUN_LOG_MAX_BYTES: 256 * 1024 ** 2,
      SANDBOX_MEMORY_BYTES: 4 * GiB,
      SANDBOX_MAX_PROCESSES: 256,
      SANDBOX_MAX_OPEN_FILES: 1024,
      SANDBOX_MAX_FILE_BYTES: 2 * GiB,
      SANDBOX_MAX_DISK_BYTES: 10 * GiB,
      PIP_TIMEOUT_SECONDS: 900,
      RUNNER_DRAIN_SECONDS: 30,
      RUNNER_ARCHIVES_MAX_BYTES: GiB,
      RUNNER_EXTRACTED_MAX_BYTES: 5 * GiB,
      RUNNER_ENVIRONMENTS_MAX_BYTES: 20 * GiB,
    });
  });

  it('refuses, in production, a sandbox turned off or a network left open, naming each', () => {
    let caught: unknown;
    try {
      loadConfig({ GEF_ENV: 'production', RUNNER_API_KEY: realKey, SANDBOX: 'off', SANDBOX_NETWORK: 'open' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([expect.stringMatching(/^SANDBOX: 'off'/), expect.stringMatching(/^SANDBOX_NETWORK: 'open'/)]);
    expect(loadConfig({ GEF_ENV: 'production', RUNNER_API_KEY: realKey, SANDBOX: 'on', SANDBOX_NETWORK: 'api' })).toMatchObject({ SANDBOX: 'on', SANDBOX_NETWORK: 'api' });
    // Development keeps both, for machines without root or nftables.
    expect(loadConfig({ GEF_ENV: 'development', SANDBOX: 'off', SANDBOX_NETWORK: 'open' })).toMatchObject({ SANDBOX: 'off', SANDBOX_NETWORK: 'open' });
  });

  it("refuses, in production, the development runners' key and keys under 16 characters", () => {
    expect(() => loadConfig({ GEF_ENV: 'production' })).toThrow(/RUNNER_API_KEY: must be set to a real secret/);
    expect(() => loadConfig({ RUNNER_API_KEY: 'short' })).toThrow(/RUNNER_API_KEY: each key must be at least 16 characters/);
    expect(loadConfig({ GEF_ENV: 'production', RUNNER_API_KEY: `${realKey}, another-real-key-0123456789` }).RUNNER_API_KEY).toContain(realKey);
  });

  // A typo (a few zeros too many) fails at start, naming the setting and its maximum, where
  // it was taken as it came: a limit no machine has, or one the kernel refuses to every run.
  it.each([
    ['RUN_LOG_MAX_LINES', 10_000_000, '10000000'],
    ['RUN_LOG_MAX_BYTES', 4 * GiB, '4 GiB'],
    ['SANDBOX_MEMORY_BYTES', TiB, '1 TiB'],
    ['SANDBOX_MAX_PROCESSES', 65_536, '65536'],
    ['SANDBOX_MAX_OPEN_FILES', 1_048_576, '1048576'],
    ['SANDBOX_MAX_FILE_BYTES', TiB, '1 TiB'],
    ['SANDBOX_MAX_DISK_BYTES', 16 * TiB, '16 TiB'],
    ['PIP_TIMEOUT_SECONDS', 86_400, '86400'],
    ['RUNNER_DRAIN_SECONDS', 86_400, '86400'],
    ['RUNNER_ARCHIVES_MAX_BYTES', 16 * TiB, '16 TiB'],
    ['RUNNER_EXTRACTED_MAX_BYTES', 16 * TiB, '16 TiB'],
    ['RUNNER_ENVIRONMENTS_MAX_BYTES', 16 * TiB, '16 TiB'],
  ])('refuses %s above %d, and takes it at most', (name, max, said) => {
    expect(loadConfig({ [name]: String(max) })[name as 'RUN_LOG_MAX_LINES']).toBe(max);
    let caught: unknown;
    try {
      loadConfig({ [name]: String(max * 10) });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([expect.stringContaining(`${name}: `)]);
    expect((caught as ConfigError).problems[0]).toContain(said);
  });
});
