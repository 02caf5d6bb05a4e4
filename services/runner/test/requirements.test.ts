import { EnvironmentError } from '../src/environments/environment-error';
import { environmentHash } from '../src/environments/environment-hash';
import { normaliseRequirements } from '../src/environments/requirements';

describe('normaliseRequirements', () => {
  it('drops comments, blank lines and duplicates, joins continuations and sorts', () => {
    const text = '\uFEFF# a comment\r\nrequests>=2.0  # inline\r\n\r\nNumPy == 1.26.4\nnumpy==1.26.4\nsix\\\n==1.17.0\n   \n';
    expect(normaliseRequirements(text)).toEqual(['numpy==1.26.4', 'requests>=2.0', 'six==1.17.0']);
  });

  it('canonicalises names (PEP 503) and keeps URLs and markers readable', () => {
    expect(normaliseRequirements('Foo_Bar.Baz[extra] ~= 1.0\npkg @ https://example.org/pkg-1.0.zip#egg=pkg\nwin-only; sys_platform == "win32"')).toEqual([
      'foo-bar-baz[extra]~=1.0',
      'pkg @ https://example.org/pkg-1.0.zip#egg=pkg',
      'win-only; sys_platform == "win32"',
    ]);
  });

  it('is empty for an empty or comment-only file', () => {
    expect(normaliseRequirements('')).toEqual([]);
    expect(normaliseRequirements('# nothing\n\n')).toEqual([]);
  });

  it.each(['-r other.txt', '-e .', '--index-url https://evil.example/simple', '  --extra-index-url x'])('refuses pip options: %s', (line) => {
    let caught: unknown;
    try {
      normaliseRequirements(`six\n${line}\n`);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnvironmentError);
    expect((caught as EnvironmentError).retryable).toBe(false);
    expect((caught as Error).message).toMatch(/pip options are not supported/);
  });
});

describe('environmentHash', () => {
  it('is the same for equivalent requirement files and differs by runtime and content', () => {
    const a = environmentHash('python3', normaliseRequirements('six==1.17.0\nrequests\n'));
    const b = environmentHash('python3', normaliseRequirements('# same\nRequests\n\nsix == 1.17.0\n'));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(environmentHash('python3', normaliseRequirements('six==1.16.0\nrequests\n'))).not.toBe(a);
    expect(environmentHash('python4', normaliseRequirements('six==1.17.0\nrequests\n'))).not.toBe(a);
    expect(environmentHash('python3', [])).not.toBe(environmentHash('python3', ['']));
  });
});
