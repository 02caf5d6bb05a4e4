import { InvalidArgument, lineBreakingText } from '@gef/common';

/**
 * Whether some UTF-16 unit of `text`, taken alone, matches `kind`: the identity provider
 * checks its password policy one Java `char` at a time, so a character outside the Basic
 * Multilingual Plane is two surrogates to it, neither a letter nor a digit.
 */
const someUnit = (text: string, kind: RegExp) => {
  for (let i = 0; i < text.length; i++) if (kind.test(text[i]!)) return true;
  return false;
};

/**
 * A clear 422 reason when a password misses the policy (≥ 12, upper, lower, digit, symbol),
 * judged as the identity provider judges it (`Character.isUpperCase`, `isLowerCase`,
 * `isDigit`, and a symbol being anything but `isLetterOrDigit`): a password passing here and
 * refused there failed a password change after other sessions had been ended. `ñ` is a
 * letter, not a symbol; `É` is an upper-case letter; `٣` is a digit.
 */
export function passwordPolicyViolation(password: string): string | undefined {
  if (password.length < 12) return 'Password must be at least 12 characters long';
  if (password.length > 256) return 'Password must be at most 256 characters long';
  if (!someUnit(password, /\p{Uppercase}/u)) return 'Password must contain an upper-case letter';
  if (!someUnit(password, /\p{Lowercase}/u)) return 'Password must contain a lower-case letter';
  if (!someUnit(password, /\p{Nd}/u)) return 'Password must contain a digit';
  if (!someUnit(password, /[^\p{L}\p{Nd}]/u)) return 'Password must contain a symbol (a character that is neither a letter nor a digit)';
  return undefined;
}

// Printable characters only: no C0/C1 control characters except none at all.

/**
 * One label of an e-mail domain: ASCII letters and digits, or letters of the Latin script
 * (an internationalised domain Keycloak takes), with inner hyphens.
 */
const domainLabel = String.raw`[a-z0-9\p{Script=Latin}](?:[a-z0-9\p{Script=Latin}-]{0,62}[a-z0-9\p{Script=Latin}])?`;
/**
 * The local part is printable ASCII without the specials that need quoting: the identity
 * provider refuses any other (an address needing SMTPUTF8), so the API refuses it first, as
 * an invalid address.
 */
const emailPattern = new RegExp(String.raw`^((?:(?![@"(),:;<>[\\\]])[\x21-\x7e]){1,64})@(${domainLabel}(?:\.${domainLabel})+)$`, 'u');

/** Lower-cases and checks an e-mail address (RFC 5321 lengths, one @, a dotted domain). */
export function normaliseEmail(input: string): string {
  const email = input.trim().toLowerCase();
  if (email.length === 0) throw new InvalidArgument('email is required', 'invalid_argument');
  if (email.length > 254 || lineBreakingText.test(email)) throw new InvalidArgument('Invalid email address', 'invalid_argument');
  const m = emailPattern.exec(email);
  if (!m || m[1]!.startsWith('.') || m[1]!.endsWith('.') || m[1]!.includes('..')) {
    throw new InvalidArgument('Invalid email address', 'invalid_argument');
  }
  return email;
}

/** Checks a free-text profile field: trimmed, bounded, no control characters. */
export function profileText(field: string, input: string, max: number, required = false): string {
  const value = input.trim();
  if (required && value.length === 0) throw new InvalidArgument(`${field} is required`, 'invalid_argument');
  if (value.length > max) throw new InvalidArgument(`${field} must be at most ${max} characters`, 'invalid_argument');
  if (lineBreakingText.test(value)) throw new InvalidArgument(`${field} must not contain control characters`, 'invalid_argument');
  return value;
}

export const profileLimits = { name: 200, country: 100, institution: 300 } as const;
