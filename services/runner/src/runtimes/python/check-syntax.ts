import { runStreaming } from '../../process/run-streaming';

/**
 * Compiles a script's source with the runtime's interpreter, running none of it: the
 * source comes on stdin (the runner reads it; the checking process, a build's sandbox user,
 * reads nothing of the runner's), and a syntax error is printed as Python prints it.
 */
const checker = [
  'import sys, traceback',
  'source = sys.stdin.buffer.read()',
  'try:',
  '    compile(source, sys.argv[1], "exec", dont_inherit=True)',
  // A codec the script's environment registers (a .pth file, src/__init__.py) is not known here.
  'except SyntaxError as exc:',
  '    if str(exc.msg).startswith("unknown encoding"):',
  '        sys.stdout.write(str(exc.msg) + "\\n")',
  '        sys.exit(4)',
  '    sys.stdout.write("".join(traceback.format_exception_only(type(exc), exc)))',
  '    sys.exit(3)',
  'except ValueError as exc:',
  '    sys.stdout.write("".join(traceback.format_exception_only(type(exc), exc)))',
  '    sys.exit(3)',
  'except (MemoryError, RecursionError) as exc:',
  '    sys.stdout.write(type(exc).__name__ + ": the source is too deeply nested or too large to compile\\n")',
  '    sys.exit(3)',
].join('\n');

/**
 * How a check went: `invalid` with Python's own lines when the source does not compile;
 * `unchecked` when it names an encoding only its environment can know.
 */
export type SyntaxCheck =
  | { ok: true; unchecked?: string }
  | { ok: false; invalid: true; lines: string[] }
  | { ok: false; invalid: false; reason: string };

export interface SyntaxCheckOptions {
  python: string;
  env: Record<string, string>;
  /** The command line that runs the check as a sandbox user, with limits; as it is when absent. */
  wrap?: (command: string, args: string[]) => { command: string; args: string[] };
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Compiles `source` as `name` (e.g. `src/main.py`) with `python -I -S`. */
export async function checkPythonSyntax(source: Uint8Array, name: string, options: SyntaxCheckOptions): Promise<SyntaxCheck> {
  const wrap = options.wrap ?? ((command: string, args: string[]) => ({ command, args }));
  // Warnings (SyntaxWarning: invalid escape sequences…) would crowd out the error.
  const line = wrap(options.python, ['-I', '-S', '-W', 'ignore', '-c', checker, name]);
  const done = await runStreaming(line.command, line.args, {
    env: options.env,
    timeoutMs: options.timeoutMs ?? 60_000,
    input: source,
    keepLines: 20,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const lines = done.tail;
  if (done.code === 0) return { ok: true };
  if (done.code === 4) return { ok: true, unchecked: lines.at(-1) ?? 'unknown encoding' };
  if (done.code === 3 && lines.length > 0) return { ok: false, invalid: true, lines };
  const why = done.aborted ? 'cancelled' : done.timedOut ? 'took too long' : `ended with ${done.signal ?? `code ${done.code}`}`;
  return { ok: false, invalid: false, reason: `the syntax check ${why}${lines.length > 0 ? `: ${lines.at(-1)}` : ''}` };
}
