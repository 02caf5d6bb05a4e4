import { describeFailure, type Logger } from '@gef/common';
import type { KeycloakAdminClient } from '../keycloak/admin-client';

/** Seconds, or where to read them each time (they may change while the service runs). */
export type Seconds = number | (() => number);

/** `seconds` as a reader. */
export const secondsOf = (seconds: Seconds): (() => number) => (typeof seconds === 'number' ? () => seconds : seconds);

export interface TokenLifetimeOptions {
  /** ACCESS_TOKEN_LIFETIME_SECONDS: the lifetime assumed until Keycloak says otherwise, and the least ever assumed. */
  configuredSeconds: number;
  keycloak: Pick<KeycloakAdminClient, 'longestAccessTokenLifespan'>;
  /** Told when the lifetime grows (the revocations in force must then be kept longer). */
  onLonger?: (seconds: number) => Promise<void>;
  logger: Logger;
  /** Between two reads of the realm's settings. */
  refreshMs?: number;
}

/**
 * How long an access token may live, so how long a revocation must be kept: the longer of
 * ACCESS_TOKEN_LIFETIME_SECONDS and what Keycloak's realm (or any of its clients) is set to,
 * read at start and every `refreshMs`. An operator who raises the lifespan in Keycloak
 * without changing this service's setting does not bring revoked tokens back once the
 * shorter time has passed. It never shrinks while the service runs: tokens issued under a
 * longer lifespan live on after the setting is lowered.
 */
export class TokenLifetime {
  private learned = 0;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(private readonly options: TokenLifetimeOptions) {}

  /** The lifetime to assume now, in seconds. */
  readonly seconds = (): number => Math.max(this.options.configuredSeconds, this.learned);

  /** Reads Keycloak's settings once; on a longer lifetime, logs it and calls `onLonger`. */
  async refresh(): Promise<void> {
    const { keycloak, logger, configuredSeconds } = this.options;
    const realmSeconds = await keycloak.longestAccessTokenLifespan();
    const now = Math.max(configuredSeconds, this.learned, realmSeconds);
    if (now > this.seconds()) {
      logger.warn(
        { realmSeconds, configuredSeconds },
        `Keycloak issues access tokens living ${realmSeconds} s, longer than ACCESS_TOKEN_LIFETIME_SECONDS: revocations are kept ${now} s`,
      );
      // Learned once the revocations in force are kept that long: a failure is tried again next time.
      await this.options.onLonger?.(now);
      this.learned = now;
    }
  }

  /** Reads now, then every `refreshMs`, in the background. */
  start(): void {
    const read = () =>
      void this.refresh().then(
        () => {
          if (this.failing) this.options.logger.info('the Keycloak realm’s token lifespan is read again');
          this.failing = false;
        },
        (err: unknown) => {
          if (!this.failing) this.options.logger.warn({ reason: describeFailure(err) }, 'cannot read the Keycloak realm’s token lifespan, or keep the revocations in force that long; retrying');
          this.failing = true;
        },
      );
    read();
    this.timer = setInterval(read, this.options.refreshMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
