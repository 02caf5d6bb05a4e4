/**
 * How deep JSON may nest where it crosses the platform's RPCs. Run params and results
 * travel as `google.protobuf.Struct` / `Value`: each level of JSON objects or arrays is two
 * protobuf messages (a Value and its Struct or ListValue), and protobuf-es refuses to decode
 * messages nested deeper than its recursion limit (100 by default, about 48 levels of JSON
 * inside an Execution inside a list answer).
 */

/**
 * The deepest run params and results the platform accepts (levels of objects and arrays):
 * the gateway refuses deeper JSON bodies, the execution service deeper params and results
 * from any caller. Far below what every RPC hop decodes (`rpcJsonDepth`).
 */
export const maxJsonValueDepth = 32;

/**
 * The largest run results the platform stores, in bytes of JSON text (UTF-8). Results
 * travel as `google.protobuf.Value`, one message per JSON value, so their cost on every
 * hop that decodes them (execution service, gateway) is far above their text's: 6 MB of
 * `[0, 0, …]` took the execution service from 371 to 813 MB and a gateway worker from 193
 * to 811 MB on reads.
 */
export const maxResultsBytes = 8 * 1024 * 1024;

/**
 * The most JSON values stored run results may hold: every number, string, boolean, null,
 * array and object counts one (keys do not), so `[1, 2]` is 3 and `{"a": [true]}` 3.
 */
export const maxResultsValues = 100_000;

/**
 * The recursion limit of binary decoding on every Connect transport and server of the
 * platform (protobuf-es: 100). High enough for values stored before `maxJsonValueDepth`
 * held (up to `rpcJsonDepth`), low enough that decoding stays far from Node's stack limit
 * (decoding failed there near 2,000).
 */
export const rpcRecursionLimit = 512;

/**
 * The deepest JSON a message may carry and still decode under `rpcRecursionLimit`: two
 * messages a level, plus the envelopes around it (a watch event holding an Execution
 * holding the value). A stored value deeper than this is answered as its JSON text.
 */
export const rpcJsonDepth = 240;

/**
 * Whether a JSON text nests objects and arrays deeper than `max`: a scan of its characters,
 * without parsing it (so a text nested a million deep costs no stack). Text that is not
 * JSON gives an answer too; parsing it is what finds it invalid.
 */
export function jsonTextDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Whether a parsed JSON value nests objects and arrays deeper than `max` (a scalar is 0,
 * `{}` and `[1]` are 1), found without recursion.
 */
export function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Whether a parsed JSON value holds more than `max` values (every scalar, array and
 * object counts one; keys do not), found without recursion and stopping at `max`.
 */
export function jsonValueCountExceeds(value: unknown, max: number): boolean {
  const stack: unknown[] = [value];
  let count = 0;
  while (stack.length > 0) {
    const item = stack.pop();
    if (++count > max) return true;
    if (typeof item !== 'object' || item === null) continue;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push(child);
  }
  return false;
}

/**
 * Whether a JSON text holds more than `max` values (counted as `jsonValueCountExceeds`
 * does): a scan of its characters, without parsing it, stopping at `max`. Text that is
 * not JSON gives an answer too; parsing it is what finds it invalid.
 */
export function jsonTextValueCountExceeds(text: string, max: number): boolean {
  let count = 0;
  let inString = false;
  // Whether the next token is a value (not an object key), and the kind of each open container.
  let valueNext = true;
  const inObject: boolean[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    switch (c) {
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
        continue;
      case 0x22: // a string: a value, or a key
        inString = true;
        if (!valueNext) continue;
        break;
      case 0x7b: // {
        inObject.push(true);
        if (++count > max) return true;
        valueNext = false;
        continue;
      case 0x5b: // [
        inObject.push(false);
        if (++count > max) return true;
        valueNext = true;
        continue;
      case 0x7d: // }
      case 0x5d: // ]
        inObject.pop();
        valueNext = false;
        continue;
      case 0x3a: // :
        valueNext = true;
        continue;
      case 0x2c: // ,
        valueNext = !inObject[inObject.length - 1];
        continue;
      default: // the first character of a number, true, false or null; the rest follow it
        if (!valueNext) continue;
    }
    valueNext = false;
    if (++count > max) return true;
  }
  return false;
}

/**
 * JSON text without whitespace outside its strings, as `JSON.stringify` writes it; text
 * without any is returned as it is. For PostgreSQL's `jsonb` text (`{"a": 1, "b": [1, 2]}`),
 * which puts a space after every comma and colon: half again the bytes of a list of small
 * numbers. A scan of its UTF-8 bytes (no value is made): a few milliseconds a megabyte,
 * where parsing and writing it again made a JavaScript value of each.
 */
export function compactJsonText(text: string): string {
  const src = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  let inString = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (inString) {
      if (c === 0x5c) {
        // A backslash and the byte it escapes, kept together.
        out[n++] = c;
        i++;
        if (i < src.length) out[n++] = src[i]!;
        continue;
      }
      if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    out[n++] = c;
  }
  return n === src.length ? text : out.toString('utf8', 0, n);
}
