import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvironmentError } from '../src/environments/environment-error';
import { buildPythonEnvironment } from '../src/runtimes/python/build-python-environment';

const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

describe('buildPythonEnvironment', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-build-env-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes a venv stopped by its build (cancelled, its runner stopping) worth another attempt', async () => {
    const stop = new AbortController();
    const started = buildPythonEnvironment(path.join(dir, 'env'), [], {
      python: 'python3',
      env,
      pipTimeoutMs: 60_000,
      onLine: () => undefined,
      onProcess: () => stop.abort(),
      signal: stop.signal,
    });
    const err = await started.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).retryable).toBe(true);
  });

  it('takes a venv that fails on its own as final', async () => {
    const err = await buildPythonEnvironment(path.join(dir, 'env'), [], { python: 'false', env, pipTimeoutMs: 60_000, onLine: () => undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'EnvironmentError', retryable: false });
  });
});
