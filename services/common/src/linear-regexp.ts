import { RE2JS } from 're2js';

/**
 * JSON Schema patterns (ECMAScript syntax) matched in time linear in the input, by re2js (a
 * JavaScript port of RE2): what Ajv calls instead of `new RegExp` (its `code.regExp`).
 * JavaScript's RegExp backtracks: `^(a+)+$` against 30 a's and a `!` took seconds, and
 * each more character doubled it. RE2 has no backreferences, lookahead or lookbehind: a
 * pattern using them is refused when the schema is compiled, naming the pattern.
 */

/** JavaScript's `\s` (RE2's is ASCII only), as the inside of a class in RE2 syntax. */
const jsSpace = '\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';
/** What JavaScript's `.` matches (all but line terminators; RE2's excludes `\n` only). */
const jsDot = '[^\\n\\r\\x{2028}\\x{2029}]';
const anyChar = '\\x{0}-\\x{10FFFF}';

const hex = (codePoint: number) => `\\x{${codePoint.toString(16).toUpperCase()}}`;

/** `\uXXXX` (a surrogate pair of them as one code point) or `\u{X…}` at `i`: the code point and the length read. */
function unicodeEscape(pattern: string, i: number): { codePoint: number; length: number } | undefined {
  const braced = /^\\u\{([0-9A-Fa-f]{1,6})\}/.exec(pattern.slice(i, i + 10));
  if (braced) {
    const codePoint = parseInt(braced[1]!, 16);
    return codePoint <= 0x10ffff ? { codePoint, length: braced[0].length } : undefined;
  }
  const unit = (at: number) => (/^\\u[0-9A-Fa-f]{4}$/.test(pattern.slice(at, at + 6)) ? parseInt(pattern.slice(at + 2, at + 6), 16) : undefined);
  const high = unit(i);
  if (high === undefined) return undefined;
  const low = high >= 0xd800 && high <= 0xdbff ? unit(i + 6) : undefined;
  if (low !== undefined && low >= 0xdc00 && low <= 0xdfff) return { codePoint: 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00), length: 12 };
  return { codePoint: high, length: 6 };
}

/**
 * An ECMAScript pattern in RE2 syntax, meaning the same: `\uXXXX` and `\u{…}` escapes,
 * `\cX`, `[\b]`, `[]` and `[^]`, and JavaScript's `.` and `\s` (`\S` inside a class stays
 * RE2's ASCII one). Anything RE2 does not know is left for RE2 to refuse.
 */
export function re2Syntax(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === 'u') {
        const escape = unicodeEscape(pattern, i);
        if (escape) {
          out += hex(escape.codePoint);
          i += escape.length - 1;
          continue;
        }
      } else if (next === 'c' && /^[A-Za-z]$/.test(pattern[i + 2] ?? '')) {
        out += hex(pattern.charCodeAt(i + 2) % 32);
        i += 2;
        continue;
      } else if (next === 'b' && inClass) {
        out += hex(8);
        i += 1;
        continue;
      } else if (next === 's') {
        out += inClass ? jsSpace : `[${jsSpace}]`;
        i += 1;
        continue;
      } else if (next === 'S' && !inClass) {
        out += `[^${jsSpace}]`;
        i += 1;
        continue;
      }
      out += next === undefined ? c : c + next;
      i += 1;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      // JavaScript closes a class at its first `]`; RE2 would take that `]` literally.
      if (pattern.startsWith('[]', i)) {
        out += `[^${anyChar}]`;
        i += 1;
      } else if (pattern.startsWith('[^]', i)) {
        out += `[${anyChar}]`;
        i += 2;
      } else {
        inClass = true;
        out += c;
      }
    } else if (c === '.') {
      out += jsDot;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * Compiled patterns by RE2 source, the least recently used dropped past `maxCompiled`, so
 * the DFA caches they grow stay bounded however many schemas a process sees.
 */
const compiled = new Map<string, RE2JS>();
const maxCompiled = 1000;

function compiledPattern(source: string): RE2JS {
  let re = compiled.get(source);
  if (re) {
    compiled.delete(source);
  } else {
    re = RE2JS.compile(source);
    if (compiled.size >= maxCompiled) compiled.delete(compiled.keys().next().value!);
  }
  compiled.set(source, re);
  return re;
}

/** Drops every compiled pattern (after a match was stopped halfway: its state is not trusted). */
export function forgetCompiledPatterns(): void {
  compiled.clear();
}

/** One pattern as Ajv uses it: `test` searches anywhere in the string, as RegExp's does. */
class LinearRegExp {
  constructor(
    private readonly source: string,
    private readonly re2Source: string,
  ) {}

  test(input: string): boolean {
    return compiledPattern(this.re2Source).test(input);
  }

  /** Ajv keys the patterns of a schema by this. */
  toString(): string {
    return `/${this.source}/u`;
  }
}

/**
 * Ajv's RegExp engine (`code.regExp`): `pattern` is checked (compiled) at once, so a schema
 * with a pattern RE2 refuses fails to compile with a message naming it. Ajv passes the flag
 * `u` (patterns are Unicode-aware, as RE2 always is) and no other.
 */
export function linearRegExp(pattern: string, flags: string): LinearRegExp {
  if (/[^u]/.test(flags)) throw new Error(`pattern ${JSON.stringify(pattern)}: flags '${flags}' are not supported`);
  const re2Source = re2Syntax(pattern);
  try {
    compiledPattern(re2Source);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^error parsing regexp: /, '');
    throw new Error(
      `pattern ${JSON.stringify(pattern)} is not supported (${reason}): patterns are matched in linear time, as RE2 does, which has no backreferences, lookahead or lookbehind and repeats at most 1000 times`,
    );
  }
  return new LinearRegExp(pattern, re2Source);
}
/** For Ajv's standalone code, which is not generated here. */
linearRegExp.code = 'linearRegExp';
