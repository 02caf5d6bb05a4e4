import { createHash } from 'node:crypto';
import { resources } from '../src/routes';
import { request, startStack, type TestStack } from './support';

/** The policy's sources for one directive: `'sha256-…'` items. */
const hashesOf = (policy: string, directive: string): string[] =>
  (policy.split(';').map((d) => d.trim()).find((d) => d.startsWith(`${directive} `)) ?? '').split(/\s+/).slice(1);

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('the page password e-mails link to', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({}, { resources });
  });
  afterAll(() => stack.stop());

  it('is served without a login, and its policy allows exactly its own inline script and style', async () => {
    const res = await request(stack.gateway.url, '/reset-password?token=abc');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const html = res.body.toString('utf8');
    const policy = String(res.headers['content-security-policy']);
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    // A browser runs an inline script only when its hash is in the policy, byte for byte.
    expect(hashesOf(policy, 'script-src')).toEqual([sha256(script)]);
    expect(hashesOf(policy, 'style-src')).toEqual([sha256(style)]);
    expect(policy).toMatch(/default-src 'none'/);
    expect(policy).toMatch(/connect-src 'self'/);
    // It sends the token with the new password to the API beside it.
    expect(script).toContain("'/api/v1/user/reset-password'");
    expect(html).not.toMatch(/<(link|img|iframe)\b|src=|href=/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('answers with a trailing slash too, and refuses unknown parameters', async () => {
    expect((await request(stack.gateway.url, '/reset-password/')).status).toBe(200);
    expect((await request(stack.gateway.url, '/reset-password?token=a&other=b')).status).toBe(400);
  });
});
