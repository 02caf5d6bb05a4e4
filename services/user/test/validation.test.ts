import { InvalidArgument } from '@gef/common';
import { normaliseEmail, passwordPolicyViolation, profileText } from '../src/domain/validation';

describe('validation', () => {
  it.each([
    ['short1!A', /at least 12/],
    ['alllowercase1!', /upper-case/],
    ['ALLUPPERCASE1!', /lower-case/],
    ['NoDigitsHere!!', /digit/],
    ['NoSymbols12345', /symbol/],
    // As the identity provider judges them: letters and digits of any script are no symbols.
    ['Contraseña2024', /symbol/],
    ['Straße٣Zahlen9', /symbol/],
    ['ÉCOLE-PARIS-42', /lower-case/],
    ['\u{1D400}bcdefgh-123', /upper-case/],
  ])('refuses the password %j', (password, reason) => {
    expect(passwordPolicyViolation(password)).toMatch(reason);
  });

  it.each(['Correct-Horse-42', 'Éducation-nationale-٣', 'Contraseña 2024', 'Ⓐbcdefgh1234😀'])('accepts the strong password %j', (password) => {
    expect(passwordPolicyViolation(password)).toBeUndefined();
  });

  it.each([
    ['  Alice@Example.ORG ', 'alice@example.org'],
    ['bob+tag@sub.example.com', 'bob+tag@sub.example.com'],
    ['jose@EXÄMPLE.org', 'jose@exämple.org'],
    ["o'brien!#$%&*=?^_`{|}~@example.org", "o'brien!#$%&*=?^_`{|}~@example.org"],
  ])('normalises %j', (input, expected) => {
    expect(normaliseEmail(input)).toBe(expected);
  });

  it.each(['', 'no-at-sign', 'a@b', 'a@@b.org', 'a b@c.org', '.a@b.org', 'a..b@c.org', `${'x'.repeat(250)}@b.org`, 'a\u0007@b.org', "x'; drop table user_profile;--@a.org",
    // Addresses the identity provider refuses: a local part beyond ASCII, a domain outside the Latin script.
    'josé@example.org', 'İprobe@example.org', 'probe@例え.jp', 'probe@пример.рф'])(
    'refuses the e-mail %j',
    (input) => {
      expect(() => normaliseEmail(input)).toThrow(InvalidArgument);
    },
  );

  it('bounds free text and refuses control characters', () => {
    expect(profileText('name', '  Ada  ', 10)).toBe('Ada');
    expect(() => profileText('name', 'x'.repeat(10_000), 200)).toThrow(/at most 200/);
    expect(() => profileText('name', 'a\u0000b', 200)).toThrow(/control characters/);
    expect(() => profileText('name', '   ', 200, true)).toThrow(/required/);
    expect(profileText('name', '<script>alert(1)</script>', 200)).toBe('<script>alert(1)</script>');
  });
});
