import { EnvironmentError } from '../../environments/environment-error';

/** Signs that pip could not reach the index, which trying again may fix. */
const transient = [
  /Retrying \(Retry\(/,
  /NewConnectionError/,
  /ConnectTimeoutError/,
  /ReadTimeoutError/,
  /Temporary failure in name resolution/,
  /Connection (reset|refused|aborted)/i,
  /ProxyError/,
  /SSLError/,
  /HTTP error 5\d\d/,
  /No space left on device/,
];

/**
 * Why pip failed, in one line: its last `ERROR:` line; else, for a package whose build
 * failed (`error: subprocess-exited-with-error`), the step that failed (its `×` line) with
 * the last Python exception of the build's output; else its last line that is not a note.
 */
function reasonOf(tail: string[], code: number | null): string {
  const errors = tail.filter((l) => /^ERROR: /.test(l)).map((l) => l.replace(/^ERROR: /, ''));
  if (errors.length > 0) return errors.at(-1)!;
  const step = tail
    .map((l) => /^\s*×\s+(.+?)\.?\s*$/.exec(l)?.[1])
    .filter((l) => l !== undefined)
    .at(-1);
  if (step) {
    const exception = tail
      .map((l) => /^[\s│|]*((?:[A-Za-z_][\w.]*)?(?:Error|Exception): .+)$/.exec(l)?.[1]?.trim())
      .filter((l) => l !== undefined)
      .at(-1);
    return exception ? `${step}: ${exception}` : step;
  }
  return tail.filter((l) => !/^\s*(note|hint):/i.test(l) && l.trim() !== '').at(-1) ?? `pip exited with code ${code}`;
}

/**
 * What a failed `pip install` means: a transient failure (network, disk) is retryable;
 * anything else (an unknown package, a version that does not exist, a build error) is not.
 */
export function pipFailure(tail: string[], code: number | null): EnvironmentError {
  const text = tail.join('\n');
  const reason = reasonOf(tail, code);
  const retryable = transient.some((p) => p.test(text));
  return new EnvironmentError(`pip install failed: ${reason}`, retryable);
}
