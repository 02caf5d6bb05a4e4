import type { Logger } from 'pino';
import { within } from './within';

export type Closer = () => Promise<void> | void;

/**
 * Runs the closers in reverse order of registration on SIGTERM or SIGINT (each bounded
 * by a timeout), then exits. A second signal exits at once.
 */
export class Shutdown {
  private readonly closers: { name: string; close: Closer }[] = [];
  private stopping = false;
  private signals = 0;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
  ) {}

  add(name: string, close: Closer): void {
    this.closers.push({ name, close });
  }

  /** Installs the signal handlers. */
  listen(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        // A second signal, not a shutdown begun otherwise (a cluster's primary may ask just
        // before the same signal to the whole group arrives).
        this.signals++;
        if (this.signals > 1) process.exit(1);
        this.begin(signal);
      });
    }
  }

  /** Runs the closers, then exits; once (a later call changes nothing; a second signal exits at once). */
  begin(reason: string): void {
    if (this.stopping) return;
    this.logger.info({ signal: reason }, 'shutting down');
    void this.run().then((ok) => process.exit(ok ? 0 : 1));
  }

  /** Runs every closer; resolves false when one failed or timed out. */
  async run(): Promise<boolean> {
    this.stopping = true;
    let ok = true;
    for (const { name, close } of [...this.closers].reverse()) {
      try {
        await within(Promise.resolve().then(close), this.timeoutMs, 'timed out');
      } catch (err) {
        ok = false;
        this.logger.error({ err, part: name }, 'error while shutting down');
      }
    }
    return ok;
  }
}
