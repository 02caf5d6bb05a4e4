import { cutText, unstorableText } from '@gef/common';

// Where archives (bytes the gateway does not read) hold `unstorableText`.

const maxShownPath = 200;

/** A JSON path for a message: unstorable characters as `?`, cut to a readable length. */
function shownPath(path: string): string {
  const clean = path.replace(new RegExp(unstorableText.source, 'g'), '?');
  return clean.length > maxShownPath ? `${cutText(clean, maxShownPath)}…` : clean;
}

/**
 * Where a parsed JSON value holds unstorable text, in a key or a string, named for a
 * message (`'params_schema.properties.n.title'`, `the key 'extra.a?b'`); undefined when
 * nowhere. Walks with a stack of its own: the value may be nested as deep as JSON.parse took.
 */
export function unstorablePlace(root: unknown): string | undefined {
  const pending: Array<{ value: unknown; path: string }> = [{ value: root, path: '' }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (unstorableText.test(value)) return `'${shownPath(path)}'`;
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    const array = Array.isArray(value);
    for (const [key, child] of Object.entries(value)) {
      const childPath = array ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      if (!array && unstorableText.test(key)) return `the key '${shownPath(childPath)}'`;
      pending.push({ value: child, path: childPath });
    }
  }
  return undefined;
}

/** The 1-based line of a text where `unstorableText` first matches; undefined when nowhere. */
export function unstorableLine(text: string): number | undefined {
  const at = text.search(unstorableText);
  if (at < 0) return undefined;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
