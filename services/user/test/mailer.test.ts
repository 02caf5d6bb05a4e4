import net from 'node:net';
import { findFreePorts } from '@gef/deploy';
import { certainlyNotSent, Mailer, permanentRefusal } from '../src/mail/mailer';

const settings = { host: '127.0.0.1', port: 1, from: 'GEF <no-reply@gef.local>', publicUrl: 'https://api.example.org/' };

describe('password links', () => {
  it("open the gateway's own page by default", () => {
    expect(new Mailer(settings).link('a b+c')).toBe('https://api.example.org/reset-password?token=a%20b%2Bc');
  });

  it("open a web client's page when one is configured, whatever its query", () => {
    expect(new Mailer({ ...settings, passwordLinkUrl: 'https://app.example.org/password' }).link('t')).toBe('https://app.example.org/password?token=t');
    expect(new Mailer({ ...settings, passwordLinkUrl: 'https://app.example.org/#/reset?lang=fr' }).link('t')).toBe('https://app.example.org/#/reset?lang=fr&token=t');
  });
});

/**
 * A mail server on a free port that speaks SMTP up to the end of the message, then does
 * `atEnd`: answers with a refusal, or closes the connection without answering (the answer
 * lost: the message may have been taken).
 */
async function smtpServer(
  atEnd: 'refuse' | 'drop' | 'accept',
  extensions: string[] = [],
  refuseRecipients = false,
): Promise<{ port: number; received: number; messages: string[]; commands: string[]; close: () => Promise<void> }> {
  const state = { received: 0, messages: [] as string[], commands: [] as string[] };
  const server = net.createServer((socket) => {
    let buffer = '';
    let inData = false;
    socket.write('220 test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          state.messages.push(buffer.slice(0, end));
          buffer = buffer.slice(end + 5);
          inData = false;
          state.received++;
          if (atEnd === 'drop') return void socket.destroy();
          if (atEnd === 'accept') {
            socket.write('250 2.0.0 queued\r\n');
            continue;
          }
          socket.write('554 5.7.1 Message refused\r\n');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const command = buffer.slice(0, eol);
        const line = command.toUpperCase();
        buffer = buffer.slice(eol + 2);
        state.commands.push(command);
        if (line.startsWith('EHLO') && extensions.length > 0) {
          socket.write(['test', ...extensions].map((e, i, all) => `250${i < all.length - 1 ? '-' : ' '}${e}\r\n`).join(''));
        } else if (line.startsWith('STARTTLS')) {
          // As a relay without TLS answers it.
          socket.write('502 5.5.1 Command not implemented\r\n');
        } else if (line.startsWith('RCPT') && refuseRecipients) {
          socket.write('550 5.1.1 Recipient address rejected: no such mailbox\r\n');
        } else if (line.startsWith('AUTH')) {
          socket.write('235 2.7.0 Authentication successful\r\n');
        } else if (line.startsWith('DATA')) {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (line.startsWith('QUIT')) {
          socket.end('221 bye\r\n');
        } else {
          socket.write('250 OK\r\n');
        }
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get received() {
      return state.received;
    },
    messages: state.messages,
    commands: state.commands,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on. */
const closedPort = async (): Promise<number> => (await findFreePorts(1))[0]!;

/** What sending a password link over real SMTP to `port` fails with. */
async function sendFailure(port: number): Promise<unknown> {
  const mailer = new Mailer({ ...settings, port });
  try {
    await mailer.sendSetPassword('ada@example.org', 'token');
  } catch (err) {
    return err;
  } finally {
    mailer.close();
  }
  throw new Error('the e-mail was sent');
}

describe('whether a failed e-mail certainly did not go out', () => {
  it('yes: nothing listens on the mail server port', async () => {
    expect(certainlyNotSent(await sendFailure(await closedPort()))).toBe(true);
  });

  it('yes: the mail server refuses the message', async () => {
    const server = await smtpServer('refuse');
    try {
      const err = await sendFailure(server.port);
      expect(err).toMatchObject({ responseCode: 554 });
      expect(certainlyNotSent(err)).toBe(true);
      // The message refused after DATA (policy): not a refusal of its recipient for good.
      expect(permanentRefusal(err)).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('no: the connection ends after the message went over, before its answer (it may have been taken)', async () => {
    const server = await smtpServer('drop');
    try {
      const err = await sendFailure(server.port);
      expect(server.received).toBe(1);
      expect(certainlyNotSent(err)).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('no: a failure of unknown kind', () => {
    expect(certainlyNotSent(new Error('socket hang up'))).toBe(false);
    expect(certainlyNotSent(Object.assign(new Error('Timeout'), { code: 'ETIMEDOUT' }))).toBe(false);
    expect(certainlyNotSent(undefined)).toBe(false);
  });
});

/** A message's text body, quoted-printable undone (nodemailer wraps long lines so). */
function bodyOf(message: string): string {
  const body = message.slice(message.indexOf('\r\n\r\n') + 4);
  return Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

describe('what the e-mails say', () => {
  it('greets no one by name in a password link (whoever registers an address chooses the name)', async () => {
    const server = await smtpServer('accept');
    const mailer = new Mailer({ ...settings, port: server.port });
    try {
      await mailer.sendSetPassword('victim@example.org', 'set-token');
      await mailer.sendRecoverPassword('victim@example.org', 'reset-token');
      const [set, reset] = server.messages.map(bodyOf);
      expect(set).toMatch(/^Hello,\r?\n/);
      expect(set).toContain('token=set-token');
      expect(reset).toMatch(/^Hello,\r?\n/);
      expect(reset).toContain('token=reset-token');
    } finally {
      mailer.close();
      await server.close();
    }
  });

  it("puts another user's script name on one line, short, so it writes no lines of its own", async () => {
    const server = await smtpServer('accept');
    const mailer = new Mailer({ ...settings, port: server.port });
    const scriptName = `NDVI" ended with the status FAILED.\r\n\r\nIts details:  https://evil.example/login\u2028${'x'.repeat(300)}`;
    try {
      await mailer.sendExecutionFinished('ada@example.org', 'Ada', { executionId: 'e-1', scriptId: 's-1', scriptName, status: 'FINISHED' });
      const body = bodyOf(server.messages[0]!);
      const lines = body.split(/\r?\n/);
      expect(lines.filter((l) => l.startsWith('Its details:'))).toEqual(['Its details:  https://api.example.org/api/v1/execution/e-1']);
      expect(lines.find((l) => l.includes('evil.example'))).toMatch(/^Your execution e-1 of "NDVI" ended with the status FAILED\. Its details: https:\/\/evil\.example\/login x+…" ended with the status FINISHED\.$/);
    } finally {
      mailer.close();
      await server.close();
    }
  });
});

describe('the mail relay', () => {
  it('is logged in to when a login is set', async () => {
    const server = await smtpServer('accept', ['AUTH PLAIN LOGIN']);
    const mailer = new Mailer({ ...settings, host: 'localhost', port: server.port, tls: 'opportunistic', login: { user: 'relay-user', password: 'relay-pass' } });
    try {
      await mailer.sendRecoverPassword('ada@example.org', 'token');
      const auth = server.commands.find((c) => c.toUpperCase().startsWith('AUTH PLAIN'));
      expect(Buffer.from(auth!.split(' ')[2]!, 'base64').toString('utf8')).toBe('\0relay-user\0relay-pass');
      expect(server.messages).toHaveLength(1);
    } finally {
      mailer.close();
      await server.close();
    }
  });

  it('gets no password in clear: with a login and no TLS setting, STARTTLS is required', async () => {
    const server = await smtpServer('accept', ['AUTH PLAIN LOGIN']);
    const mailer = new Mailer({ ...settings, port: server.port, login: { user: 'relay-user', password: 'relay-pass' } });
    try {
      await expect(mailer.sendRecoverPassword('ada@example.org', 'token')).rejects.toThrow();
      expect(server.commands.some((c) => /^AUTH/i.test(c))).toBe(false);
      expect(server.messages).toEqual([]);
    } finally {
      mailer.close();
      await server.close();
    }
  });

  it('refuses a recipient for good only when it says so to RCPT TO', async () => {
    const server = await smtpServer('accept', [], true);
    const mailer = new Mailer({ ...settings, port: server.port });
    try {
      const err = await mailer.sendRecoverPassword('nobody@example.org', 'token').then(() => undefined, (e: unknown) => e);
      expect(permanentRefusal(err)).toBe(550);
      expect(certainlyNotSent(err)).toBe(true);
    } finally {
      mailer.close();
      await server.close();
    }
  });

  it('gets no e-mail in clear when STARTTLS is required and it offers none', async () => {
    const server = await smtpServer('accept');
    const mailer = new Mailer({ ...settings, port: server.port, tls: 'starttls' });
    try {
      await expect(mailer.sendRecoverPassword('ada@example.org', 'token')).rejects.toThrow();
      expect(server.messages).toEqual([]);
    } finally {
      mailer.close();
      await server.close();
    }
  });
});
