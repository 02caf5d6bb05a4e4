import { slugify } from '../src/domain/slug';

describe('slugify', () => {
  it.each([
    ['My First Script', 'my-first-script'],
    ['Productivity 1.0.3', 'productivity-1-0-3'],
    ['  --Land  Degradation__SDG 15.3.1!!  ', 'land-degradation-sdg-15-3-1'],
    ['Déjà vu: São Paulo', 'deja-vu-sao-paulo'],
    ['Straße Øresund Łódź', 'strasse-oresund-lodz'],
    ['ÉCOLE', 'ecole'],
    ['a---b', 'a-b'],
    ['日本語 script', 'script'],
    // Letters that are ASCII only once normalised, lower-cased all the same.
    ['𝐁old 𝐍ame', 'bold-name'],
    ['ℍello', 'hello'],
    ['ＦＵＬＬ Ｗｉｄｔｈ', 'full-width'],
    ['Ⅻ ﬁle', 'xii-file'],
    // A symbol that spells letters is a word of its own.
    ['Acme™ Tool', 'acme-tm-tool'],
    ['Heat 25℃', 'heat-25-c'],
    // Upper-case forms of the transliterated letters.
    ['GROẞE STRAẞE', 'grosse-strasse'],
    ['ÆRØ ŒUVRE ŁÓDŹ', 'aero-oeuvre-lodz'],
    ['ĐÐÞŊ', 'ddthn'],
    ['!!!', ''],
    ['', ''],
  ])('%j → %j', (name, slug) => {
    expect(slugify(name)).toBe(slug);
  });

  it('keeps at most 80 characters and never ends with a dash', () => {
    const slug = slugify(`${'a'.repeat(79)} bcd`);
    expect(slug).toBe('a'.repeat(79));
    expect(slugify('x'.repeat(200))).toHaveLength(80);
  });

  it('is lower-case ASCII letters, digits and single dashes', () => {
    for (const name of ['Ünïcödé Nâmé 2024', 'tab\tand\nnewline', 'emoji 🌍 map', 'İstanbul Ⅻ ﬁle']) {
      expect(slugify(name)).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    }
  });
});
