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
 * What a failed `pip install` means: a transient failure (network, disk) is retryable;
 * anything else (an unknown package, a version that does not exist, a build error) is not.
 * The reason is pip's own last error line.
 */
export function pipFailure(tail: string[], code: number | null): EnvironmentError {
  const text = tail.join('\n');
  const errors = tail.filter((l) => /^ERROR: /.test(l)).map((l) => l.replace(/^ERROR: /, ''));
  const reason = errors.at(-1) ?? tail.at(-1) ?? `pip exited with code ${code}`;
  const retryable = transient.some((p) => p.test(text));
  return new EnvironmentError(`pip install failed: ${reason}`, retryable);
}
