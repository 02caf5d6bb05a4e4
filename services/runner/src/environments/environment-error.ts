import { withoutUrlCredentials } from './url-credentials';

/** Preparing an environment failed; `retryable` says whether trying again may help. Its message holds no URL's credentials. */
export class EnvironmentError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(withoutUrlCredentials(message));
    this.name = 'EnvironmentError';
  }
}
