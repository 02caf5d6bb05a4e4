import { EnvironmentError } from './environment-error';

/** PEP 503 name normalisation: `Foo_Bar.baz` → `foo-bar-baz`. */
const canonicalName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** The one per-requirement option kept (pip-compile writes it): `--hash=<algorithm>:<hex>`. */
const hashOption = /^--hash[= ]([a-z0-9]+):([0-9a-f]+)$/i;

/** What Python's `str.splitlines()` (which pip reads requirement files with) takes as a line break. */
const pythonLineBreaks = /\r\n|[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/g;
/** Control characters left after those: no requirement holds one. */
const controlCharacter = /[\x00-\x08\x0e-\x1f\x7f-\x9f]/;
const controlCharacters = new RegExp(controlCharacter.source, 'g');

const refuse = (why: string, line: string) => new EnvironmentError(`requirements.txt: ${why} ('${line.slice(0, 200)}')`, false);

/**
 * A requirement's own text and its `--hash` options, split apart. Any other option is refused,
 * and so are paths: what they name depends on where pip runs. A local file is named by an
 * absolute `file:///` URL, read as the build's user (wheels an operator placed on the runners,
 * say; nothing of the runner's own, which that user cannot read).
 */
function splitOptions(line: string): { requirement: string; hashes: string[] } {
  // pip starts a line's options at its first word that begins with '-', whatever follows
  // (it unquotes them: `-"-global-option=x"` is an option).
  const at = line.search(/\s-/);
  const requirement = (at < 0 ? line : line.slice(0, at)).trim();
  const hashes: string[] = [];
  if (at >= 0) {
    for (const option of line.slice(at).trim().split(/\s+(?=-)/)) {
      const hash = hashOption.exec(option.trim().replace(/\s+/, ' '));
      if (!hash) throw refuse(`pip options are not supported, but for --hash`, line);
      hashes.push(`--hash=${hash[1]!.toLowerCase()}:${hash[2]!.toLowerCase()}`);
    }
  }
  const paths = 'paths are not supported (name a local file by an absolute file:/// URL)';
  if (/file:(?!\/\/\/)/i.test(requirement) || /^[.~/\\]/.test(requirement)) throw refuse(paths, line);
  // A name and its version specifiers, before any URL or marker, never hold a path separator.
  const named = requirement.split(/[@;]/)[0]!;
  if (/[/\\]/.test(named)) throw refuse(paths, line);
  return { requirement, hashes: [...new Set(hashes)].sort() };
}

function normaliseLine(line: string): string {
  const { requirement, hashes } = splitOptions(line);
  let normal: string;
  // A plain specifier (`Name [extras] op version, …`): no spaces, canonical name.
  if (!requirement.includes('@') && !requirement.includes(';')) {
    normal = requirement.replace(/\s+/g, '').replace(/^[A-Za-z0-9][A-Za-z0-9._-]*/, canonicalName);
  } else {
    // URLs and environment markers: spacing kept as one space, the name canonical.
    normal = requirement.replace(/\s+/g, ' ').replace(/^[A-Za-z0-9][A-Za-z0-9._-]*/, canonicalName);
  }
  return [normal, ...hashes].join(' ');
}

/**
 * The requirements that define an environment, normalised so that equivalent files give
 * the same list: continuations joined, comments and blank lines dropped, names canonical,
 * duplicates removed, sorted. pip options (`-r`, `-e`, `--index-url`, …) are refused, but
 * for a requirement's `--hash` (pip-compile's output); so are paths: an environment is built
 * from this list alone.
 */
export function normaliseRequirements(text: string): string[] {
  // Lines end where pip's `str.splitlines()` ends them, which is at more than '\n': a
  // requirement followed by \x1c and an option was one line here and two to pip.
  const joined = text.replace(/^\uFEFF/, '').replace(pythonLineBreaks, '\n').replace(/\\\n/g, '');
  const out = new Set<string>();
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    if (controlCharacter.test(line)) throw refuse('control characters are not supported', line.replace(controlCharacters, '?'));
    if (line.startsWith('-')) throw refuse('pip options are not supported', line);
    out.add(normaliseLine(line));
  }
  return [...out].sort();
}
