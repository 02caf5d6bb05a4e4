import { randomBytes } from 'node:crypto';

/** Never sent: without it, text a client stored could not pass for a stand-in. */
const nonce = randomBytes(12).toString('hex');
const standIn = new RegExp(`"@gef-raw-${nonce}-(\\d+)@"`, 'g');
const oneStandIn = new RegExp(`^@gef-raw-${nonce}-(\\d+)@$`);

/**
 * JSON text (an execution's params and results, as the execution service sends them) placed
 * in an answer as it is, without parsing it and writing it again: a value holds a stand-in
 * string (`hold`), and `stringify` writes the value with the text in the stand-in's place.
 * Params of half a million tiny values cost the gateway their bytes, not a JavaScript value
 * each, twice.
 */
export class RawJson {
  private readonly texts: string[] = [];

  /** A stand-in for `text`, which must be JSON (it is written as it is). */
  hold(text: string): string {
    this.texts.push(text);
    return `@gef-raw-${nonce}-${this.texts.length - 1}@`;
  }

  /** Whether `value` is a stand-in of this answer for a JSON object (not an array, a string…). */
  holdsObject(value: unknown): boolean {
    const m = typeof value === 'string' ? oneStandIn.exec(value) : null;
    return m !== null && /^\s*\{/.test(this.texts[Number(m[1])] ?? '');
  }

  /** `JSON.stringify(value)`, each stand-in replaced by the text it holds. */
  stringify(value: unknown): string {
    const json = JSON.stringify(value);
    return this.texts.length === 0 ? json : json.replace(standIn, (_, i: string) => this.texts[Number(i)]!);
  }
}
