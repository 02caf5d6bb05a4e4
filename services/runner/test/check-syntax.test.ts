import { checkPythonSyntax } from '../src/runtimes/python/check-syntax';

const options = { python: process.env['PYTHON'] ?? 'python3', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } };
const check = (source: string | Buffer) => checkPythonSyntax(typeof source === 'string' ? Buffer.from(source) : source, 'src/main.py', options);

describe('checkPythonSyntax', () => {
  it('passes source that compiles, running none of it', async () => {
    expect(await check('import sys\nsys.exit(7)\ndef run(params, logger):\n    return 1\n')).toEqual({ ok: true });
  });

  it('gives Python’s own lines for a syntax error, naming the file and line', async () => {
    const r = await check('def run(params, logger):\n    return {"a": 1\n\n');
    expect(r.ok).toBe(false);
    if (r.ok || !r.invalid) throw new Error('expected a syntax error');
    expect(r.lines[0]).toMatch(/^ {2}File "src\/main\.py", line \d+$/);
    expect(r.lines.at(-1)).toMatch(/^SyntaxError: /);
  });

  it('refuses indentation errors, NUL bytes and nesting too deep to compile', async () => {
    for (const source of ['def run(p, l):\nreturn 1\n', Buffer.from('x = 1\0\n'), `x = ${'('.repeat(500)}1${')'.repeat(500)}\n`]) {
      const r = await check(source);
      expect(r).toMatchObject({ ok: false, invalid: true });
      if (!r.ok && r.invalid) expect(r.lines.at(-1)).toMatch(/^(IndentationError|SyntaxError|ValueError|MemoryError|RecursionError): /);
    }
  });

  it('leaves unchecked a source in an encoding only its environment knows (a codec a requirement registers)', async () => {
    expect(await check('# -*- coding: future_fstrings -*-\ndef run(params, logger):\n    return 1\n')).toEqual({ ok: true, unchecked: 'unknown encoding: future_fstrings' });
  });

  it('gives the error itself after many warnings', async () => {
    const warnings = Array.from({ length: 40 }, (_, i) => `x${i} = "\\d"`).join('\n');
    const r = await check(`${warnings}\ndef run(:\n`);
    expect(r).toMatchObject({ ok: false, invalid: true });
    if (!r.ok && r.invalid) expect(r.lines.at(-1)).toMatch(/^SyntaxError: /);
  });

  it('says so when the checker itself cannot run', async () => {
    const r = await checkPythonSyntax(Buffer.from('x = 1\n'), 'src/main.py', { ...options, python: '/bin/false' });
    expect(r).toMatchObject({ ok: false, invalid: false });
  });
});
