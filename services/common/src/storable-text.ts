/**
 * Text no PostgreSQL column can hold: NUL (refused in text and jsonb alike, and as a
 * protocol error that looks like a lost connection) and UTF-16 surrogates that pair with
 * nothing (valid JSON escapes, but no Unicode text). The gateway refuses it in JSON bodies,
 * query strings and path parameters; the script service in archives, which reach it as bytes.
 */
export const unstorableText = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** How a refusal names what `unstorableText` finds. */
export const unstorableWhat = 'a NUL character (\\u0000) or an unpaired surrogate, which text cannot hold';

const unpairedSurrogates = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `text` with each unpaired surrogate made U+FFFD. Error messages quote what a request sent,
 * and Connect percent-encodes a message into its `grpc-message` trailer: an unpaired
 * surrogate there threw inside Connect, which then never answered the call.
 */
export function wellFormed(text: string): string {
  unpairedSurrogates.lastIndex = 0;
  return unpairedSurrogates.test(text) ? text.replace(unpairedSurrogates, '\ufffd') : text;
}

/** At most the first `max` UTF-16 units of `text`, one fewer where the cut would split a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: refused in
 * one-line names (a user's, a script's), which reach e-mails and logs, where a line break
 * would let them write lines of their own.
 */
export const lineBreakingText = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** `text` on one line: every run of control characters and whitespace becomes one space, cut to `max`. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > max ? `${cutText(flat, max - 1)}…` : flat;
}
