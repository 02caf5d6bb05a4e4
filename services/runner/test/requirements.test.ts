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

  // pip reads the file with Python's str.splitlines(), which ends lines at more than '\n'.
  it.each(['\x1c', '\x1d', '\x1e', '\x85', '\v', '\f', '\u2028', '\u2029', '\r'])('refuses an option after a line break only Python sees (%j)', (lineBreak) => {
    expect(() => normaliseRequirements(`requests;python_version>"0"${lineBreak}--index-url=https://evil.example/simple\n`)).toThrow(/pip options are not supported/);
  });

  it('takes those line breaks as line breaks, and refuses other control characters', () => {
    expect(normaliseRequirements('six\x1cnumpy==1.26.4\u2028requests')).toEqual(['numpy==1.26.4', 'requests', 'six']);
    expect(() => normaliseRequirements('six\x1f--index-url=https://evil.example/simple')).toThrow(/control characters are not supported \('six\?--index-url/);
    expect(() => normaliseRequirements('six\x00')).toThrow(/control characters/);
  });
});

describe('normaliseRequirements, pip-compile output and paths', () => {
  const refusal = (text: string) => {
    try {
      normaliseRequirements(text);
    } catch (err) {
      expect(err).toBeInstanceOf(EnvironmentError);
      expect((err as EnvironmentError).retryable).toBe(false);
      return (err as Error).message;
    }
    throw new Error('not refused');
  };

  it("keeps a requirement's --hash options (pip-compile's output), apart from it and sorted", () => {
    const text = ['six==1.16.0 \\', '    --hash=sha256:FFFF \\', '    --hash=sha256:1e61 \\', '    --hash sha256:8abb', '    # via -r requirements.in', 'requests==2.32.3 --hash=sha256:aaaa'].join('\n');
    expect(normaliseRequirements(text)).toEqual(['requests==2.32.3 --hash=sha256:aaaa', 'six==1.16.0 --hash=sha256:1e61 --hash=sha256:8abb --hash=sha256:ffff']);
  });

  it.each(['six==1.16.0 --config-settings=x=y', 'six --install-option=--prefix=/', 'six==1.0 -i https://evil.example/simple', 'six; python_version>"0" -"-global-option=--x"', "six -'-install-option=--x'", 'six==1.0 --hash=sha256:aa -"-config-settings=x"'])('refuses any other option of a requirement: %s', (line) => {
    expect(refusal(line)).toMatch(/pip options are not supported, but for --hash/);
  });

  it.each([
    'gefpoc @ file:relative/pkg',
    'gefpoc @ file://host/share/pkg',
    './pkg',
    '/srv/pkg',
    '~/pkg',
    'pkg/',
    'dir\\pkg.tar.gz',
    'some/where/pkg-1.0.tar.gz',
  ])('refuses paths: %s', (line) => {
    expect(refusal(`six\n${line}\n`)).toMatch(/paths are not supported \(name a local file by an absolute file:\/\/\/ URL\)/);
  });

  it('keeps a local file named by an absolute file:/// URL (read as the build user)', () => {
    expect(normaliseRequirements('Wheel_Pkg @ file:///opt/wheels/wheel_pkg-1.0-py3-none-any.whl')).toEqual(['wheel-pkg @ file:///opt/wheels/wheel_pkg-1.0-py3-none-any.whl']);
  });

  it('keeps URLs and markers that hold slashes', () => {
    expect(normaliseRequirements('pkg @ https://example.org/a/b/pkg-1.0.zip\nvcs @ git+https://example.org/r.git@v1\nx; platform_release >= "5"')).toEqual([
      'pkg @ https://example.org/a/b/pkg-1.0.zip',
      'vcs @ git+https://example.org/r.git@v1',
      'x; platform_release >= "5"',
    ]);
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
