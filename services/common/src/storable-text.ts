/**
 * Text no PostgreSQL column can hold: NUL (refused in text and jsonb alike, and as a
 * protocol error that looks like a lost connection) and UTF-16 surrogates that pair with
 * nothing (valid JSON escapes, but no Unicode text). The gateway refuses it in JSON bodies,
 * query strings and path parameters; the script service in archives, which reach it as bytes.
 */
export const unstorableText = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** How a refusal names what `unstorableText` finds. */
export const unstorableWhat = 'a NUL character (\\u0000) or an unpaired surrogate, which text cannot hold';
