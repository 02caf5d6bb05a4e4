/** Preparing an environment failed; `retryable` says whether trying again may help. */
export class EnvironmentError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'EnvironmentError';
  }
}
