import { pipFailure } from '../src/runtimes/python/pip-failure';

describe('pipFailure', () => {
  it('names the requirement pip could not find, not retryable', () => {
    const err = pipFailure(
      [
        'Collecting no-such-package-gef-test',
        'ERROR: Could not find a version that satisfies the requirement no-such-package-gef-test (from versions: none)',
        'ERROR: No matching distribution found for no-such-package-gef-test',
      ],
      1,
    );
    expect(err.retryable).toBe(false);
    expect(err.message).toBe('pip install failed: No matching distribution found for no-such-package-gef-test');
  });

  it('treats network trouble as retryable', () => {
    const err = pipFailure(
      [
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError'",
        'ERROR: No matching distribution found for six',
      ],
      1,
    );
    expect(err.retryable).toBe(true);
  });

  it("names the failed build step and the build's exception when a package's build failed", () => {
    const err = pipFailure(
      [
        '  Getting requirements to build wheel: started',
        '  error: subprocess-exited-with-error',
        '  ',
        '  × Getting requirements to build wheel did not run successfully.',
        '  │ exit code: 1',
        '  ╰─> [3 lines of output]',
        '      Traceback (most recent call last):',
        '      RuntimeError: gdal-config not found',
        '      [end of output]',
        '  ',
        '  note: This error originates from a subprocess, and is likely not a problem with pip.',
        'error: subprocess-exited-with-error',
        '',
        '× Getting requirements to build wheel did not run successfully.',
        '│ exit code: 1',
        '╰─> See above for output.',
        '',
        'note: This error originates from a subprocess, and is likely not a problem with pip.',
      ],
      1,
    );
    expect(err.retryable).toBe(false);
    expect(err.message).toBe('pip install failed: Getting requirements to build wheel did not run successfully: RuntimeError: gdal-config not found');
  });

  it('falls back to the last line or the exit code', () => {
    expect(pipFailure(['something odd'], 2).message).toBe('pip install failed: something odd');
    expect(pipFailure([], 2).message).toBe('pip install failed: pip exited with code 2');
  });
});
