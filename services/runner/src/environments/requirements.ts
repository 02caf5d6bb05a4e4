import { EnvironmentError } from './environment-error';

/** PEP 503 name normalisation: `Foo_Bar.baz` → `foo-bar-baz`. */
const canonicalName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

function normaliseLine(line: string): string {
  // A plain specifier (`Name [extras] op version, …`): no spaces, canonical name.
  if (!line.includes('@') && !line.includes(';')) {
    const compact = line.replace(/\s+/g, '');
    return compact.replace(/^[A-Za-z0-9][A-Za-z0-9._-]*/, canonicalName);
  }
  // URLs and environment markers: spacing kept as one space, the name canonical.
  return line.replace(/\s+/g, ' ').replace(/^[A-Za-z0-9][A-Za-z0-9._-]*/, canonicalName);
}

/**
 * The requirements that define an environment, normalised so that equivalent files give
 * the same list: continuations joined, comments and blank lines dropped, names canonical,
 * duplicates removed, sorted. pip options (`-r`, `-e`, `--index-url`, …) are refused: an
 * environment is built from this list alone.
 */
export function normaliseRequirements(text: string): string[] {
  const joined = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').replace(/\\\n/g, '');
  const out = new Set<string>();
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    if (line.startsWith('-')) {
      throw new EnvironmentError(`requirements.txt: pip options are not supported ('${line.slice(0, 200)}')`, false);
    }
    out.add(normaliseLine(line));
  }
  return [...out].sort();
}
