import { readStackInfo } from '../../harness/stack';

interface MaildevEmail {
  id: string;
  subject: string;
  text?: string;
  to: { address: string }[];
  time: string;
}

/** Waits for an e-mail to `to` whose subject matches, in MailDev; returns its text. */
export async function waitForMail(to: string, subject: RegExp, timeoutMs = 20_000): Promise<MaildevEmail> {
  const base = readStackInfo().urls.maildevApi;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${base}/email`);
    const mails = (await res.json()) as MaildevEmail[];
    const found = mails
      .filter((m) => m.to.some((t) => t.address.toLowerCase() === to.toLowerCase()) && subject.test(m.subject))
      .sort((a, b) => b.time.localeCompare(a.time))[0];
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no e-mail to ${to} matching ${subject}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every e-mail sent to an address. */
export async function mailsTo(to: string): Promise<MaildevEmail[]> {
  const res = await fetch(`${readStackInfo().urls.maildevApi}/email`);
  return ((await res.json()) as MaildevEmail[]).filter((m) => m.to.some((t) => t.address.toLowerCase() === to.toLowerCase()));
}

/** The single-use token in a set-password or recovery e-mail. */
export function tokenFrom(mail: MaildevEmail): string {
  const m = /token=([A-Za-z0-9_-]+)/.exec(mail.text ?? '');
  if (!m) throw new Error(`no token in e-mail "${mail.subject}"`);
  return m[1]!;
}
