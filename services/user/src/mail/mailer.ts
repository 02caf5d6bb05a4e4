import nodemailer, { type Transporter } from 'nodemailer';
import { oneLine } from '@gef/common';

export interface MailSettings {
  host: string;
  port: number;
  /**
   * `opportunistic`: STARTTLS when offered; `starttls`: required; `tls`: from the first byte.
   * Unset: `starttls` with a login (a password never goes out in clear), else `opportunistic`.
   */
  tls?: 'opportunistic' | 'starttls' | 'tls' | undefined;
  /** The relay's login, if it asks for one. */
  login?: { user: string; password: string };
  from: string;
  /** The API's address, for links to executions. */
  publicUrl: string;
  /** The page a password link opens (`?token=…` is added); defaults to the gateway's own `${publicUrl}/reset-password`. */
  passwordLinkUrl?: string | undefined;
}

/** Codes of a connection to the mail server that never opened (nodemailer keeps the system's as `originalCode`). */
const neverConnected = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EDNS']);

/**
 * Whether an e-mail whose sending failed with `err` certainly did not go out: the mail
 * server answered with a refusal (a 4xx or 5xx reply: nothing taken), the connection never
 * opened, or the envelope was refused before anything was sent. Any other failure (a
 * timeout, a connection lost while or after the message went over) may have come after the
 * server took the e-mail, whose answer was lost: it may reach its recipient all the same.
 */
export function certainlyNotSent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, originalCode, responseCode } = err as { code?: unknown; originalCode?: unknown; responseCode?: unknown };
  if (typeof responseCode === 'number' && responseCode >= 400) return true;
  if (code === 'EENVELOPE') return true;
  return [code, originalCode].some((c) => typeof c === 'string' && neverConnected.has(c));
}

/**
 * The SMTP reply code when the mail server refused this e-mail's recipient for good (a 5xx
 * reply to RCPT TO: no such mailbox): sending it again changes nothing. Undefined for any
 * other failure, refusals that hold for every e-mail included (a login refused, a sender or
 * message refused by policy), which an operator mends and a retry then gets through.
 */
export function permanentRefusal(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { responseCode, code, command } = err as { responseCode?: unknown; code?: unknown; command?: unknown };
  const refusedRecipient = code === 'EENVELOPE' && typeof command === 'string' && /^RCPT\b/i.test(command);
  return refusedRecipient && typeof responseCode === 'number' && responseCode >= 500 && responseCode < 600 ? responseCode : undefined;
}

/** The e-mails the platform sends, over SMTP. */
export class Mailer {
  private readonly transport: Transporter;

  constructor(private readonly settings: MailSettings) {
    const tls = settings.tls ?? (settings.login ? 'starttls' : 'opportunistic');
    this.transport = nodemailer.createTransport({
      host: settings.host,
      port: settings.port,
      secure: tls === 'tls',
      // Password links must not cross the network in clear where TLS is asked for.
      requireTLS: tls === 'starttls',
      ignoreTLS: tls === 'opportunistic' && (settings.host === '127.0.0.1' || settings.host === 'localhost'),
      ...(settings.login ? { auth: { user: settings.login.user, pass: settings.login.password } } : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  /** The link carrying a single-use password token. */
  link(token: string): string {
    const page = this.settings.passwordLinkUrl ?? `${this.settings.publicUrl.replace(/\/$/, '')}/reset-password`;
    return `${page}${page.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  }

  private async send(to: string, subject: string, text: string): Promise<void> {
    await this.transport.sendMail({ from: this.settings.from, to, subject, text });
  }

  // The set and reset e-mails greet no one by name: whoever registers an address chooses
  // the name, and would write their own words into a mail the platform sends to it.

  /** Registration without a password: a link to set one. */
  sendSetPassword(to: string, token: string): Promise<void> {
    return this.send(
      to,
      'Set your GEF API password',
      `Hello,\n\nAn account was created for you. Set your password with this link (valid for one hour, usable once):\n\n${this.link(token)}\n\nTo set it from a client, send the token with your new password to POST /api/v1/user/reset-password.\nToken: ${token}\n`,
    );
  }

  /** Password recovery: a link to reset it. */
  sendRecoverPassword(to: string, token: string): Promise<void> {
    return this.send(
      to,
      'Reset your GEF API password',
      `Hello,\n\nSomebody asked to reset the password of this account. If it was you, use this link (valid for one hour, usable once):\n\n${this.link(token)}\n\nTo reset it from a client, send the token with your new password to POST /api/v1/user/reset-password.\nToken: ${token}\n\nIf it was not you, ignore this message.\n`,
    );
  }

  /** A run of the user reached a terminal status (users who opted in). */
  sendExecutionFinished(
    to: string,
    name: string,
    run: { executionId: string; scriptId: string; scriptName?: string; status: string },
  ): Promise<void> {
    // The script may be another user's (a public one): its name on one line, and short.
    const script = run.scriptName ? `"${oneLine(run.scriptName, 100)}"` : `script ${run.scriptId}`;
    const base = this.settings.publicUrl.replace(/\/$/, '');
    return this.send(
      to,
      `Execution ${run.executionId} of ${script}: ${run.status}`,
      `Hello ${name},\n\nYour execution ${run.executionId} of ${script} ended with the status ${run.status}.\n\n` +
        `Its details:  ${base}/api/v1/execution/${run.executionId}\n` +
        `Its log:      ${base}/api/v1/execution/${run.executionId}/log\n\n` +
        `You get this e-mail because e-mail notifications are enabled in your profile; set email_notifications_enabled to false (PATCH /api/v1/user/me) to stop them.\n`,
    );
  }

  close(): void {
    this.transport.close();
  }
}
