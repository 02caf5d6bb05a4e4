/** The longest slug (the column is varchar(80)). */
export const maxSlugLength = 80;

/** Letters that do not decompose into an ASCII letter plus accents. */
const transliterations: Record<string, string> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  þ: 'th',
  ł: 'l',
  ı: 'i',
  ŋ: 'n',
};

/**
 * The slug of a script name: lower case ASCII (compatibility forms such as `𝐁` or `ℍ`
 * read as their letters, accents stripped, a few letters transliterated), every run of
 * other characters one `-`, trimmed of `-`, at most 80 characters. A symbol that spells
 * letters (`™`, `℃`) stands as a word of its own. Empty when the name has no letter or
 * digit.
 */
export function slugify(name: string): string {
  // Normalised before lower-casing: what becomes a letter only then is lower-cased too.
  const ascii = name
    .replace(/\p{S}/gu, ' $& ')
    .normalize('NFKD')
    .toLowerCase()
    .replace(/\p{M}+/gu, '')
    .replace(/[ßæœøđðþłıŋ]/g, (c) => transliterations[c] ?? c);
  return ascii
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxSlugLength)
    .replace(/-+$/, '');
}
