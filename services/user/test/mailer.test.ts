import { Mailer } from '../src/mail/mailer';

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
