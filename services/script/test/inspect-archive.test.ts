import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { InvalidArgument } from '@gef/common';
import { inspectArchive } from '../src/archive/inspect-archive';
import { defaultArchiveLimits, type ArchiveLimits } from '../src/archive/limits';
import { chunks, cliLayout, gzip, paxRecords, tar, tarHeader, type TestMember } from './support/tar-writer';

const limits = (over: Partial<ArchiveLimits> = {}): ArchiveLimits => ({ ...defaultArchiveLimits, ...over });
const inspect = (bytes: Buffer, over: Partial<ArchiveLimits> = {}, chunkSize = 7919) => inspectArchive(chunks(bytes, chunkSize), limits(over));

/** Expects InvalidArgument with `Invalid archive: …` matching `message`. */
async function expectRefused(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidArgument);
  expect((err as InvalidArgument).reason).toBe('invalid_archive');
  expect((err as Error).message).toMatch(message);
}

const withCli = (...extra: TestMember[]) => [...cliLayout(), ...extra];

/** Whether GNU tar extracts an archive without error; undefined when there is no tar. */
function gnuTarExtracts(bytes: Buffer): boolean | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-tar-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.tar.gz'), bytes);
    fs.mkdirSync(path.join(dir, 'out'));
    execFileSync('tar', ['-xzf', path.join(dir, 'a.tar.gz'), '-C', path.join(dir, 'out')], { stdio: 'pipe' });
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('inspectArchive accepts', () => {
  it('the Trends.Earth CLI layout', async () => {
    const bytes = gzip(tar(cliLayout({ name: 'My First Script', environment: 'trends.earth-environment' })));
    const contents = await inspect(bytes);
    expect(contents.configuration).toMatchObject({ name: 'My First Script', slug: 'my-first-script', runtime: 'python3' });
    expect(contents.requirements).toBe('');
    expect(contents.members).toBe(5);
    expect(contents.compressedBytes).toBe(bytes.length);
  });

  it('whatever the chunk sizes', async () => {
    const bytes = gzip(tar(cliLayout({ name: 'x' }, 'numpy==1.26.4\n')));
    for (const size of [1, 3, 511, 512, 513, 65536]) {
      const contents = await inspect(bytes, {}, size);
      expect(contents.requirements).toBe('numpy==1.26.4\n');
    }
  });

  it('./-prefixed names, pax and GNU long names, ustar prefixes and links inside', async () => {
    const long = `src/${'d'.repeat(120)}/file.py`;
    const bytes = gzip(
      tar([
        { name: './', type: '5' },
        { name: './configuration.json', data: '{"name": "Dotted"}' },
        { name: 'PaxHeader', type: 'x', data: paxRecords({ path: long }) },
        { name: 'ignored-by-pax', data: 'x = 1\n' },
        { name: '././@LongLink', type: 'L', data: `src/${'e'.repeat(150)}.py\0` },
        { name: 'ignored-by-gnu', data: '' },
        { name: 'main.py', prefix: './src', data: 'def run(params, logger):\n    return 1\n' },
        { name: 'src/alias.py', type: '2', linkName: 'main.py' },
        { name: 'src/up.py', type: '2', linkName: '../configuration.json' },
        { name: 'src/copy.py', type: '1', linkName: './src/main.py' },
      ]),
    );
    const contents = await inspect(bytes);
    expect(contents.configuration.slug).toBe('dotted');
    expect(contents.members).toBe(8);
  });

  it('an archive ended by a single zero block, or with record padding after the end', async () => {
    await expect(inspect(gzip(tar(cliLayout(), 1)))).resolves.toBeDefined();
    await expect(inspect(gzip(Buffer.concat([tar(cliLayout()), Buffer.alloc(10240)])))).resolves.toBeDefined();
  });

  it('what GNU tar makes', async () => {
    let hasTar = true;
    try {
      execFileSync('tar', ['--version']);
    } catch {
      hasTar = false;
    }
    if (!hasTar) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-tar-'));
    try {
      const root = path.join(dir, 'My Script');
      fs.mkdirSync(path.join(root, 'src'), { recursive: true });
      fs.writeFileSync(path.join(root, 'configuration.json'), JSON.stringify({ name: 'GNU tar script', description: 'd' }));
      fs.writeFileSync(path.join(root, 'requirements.txt'), '');
      fs.writeFileSync(path.join(root, 'src', '__init__.py'), '');
      fs.writeFileSync(path.join(root, 'src', 'main.py'), 'def run(params, logger):\n    return "OK"\n');
      const file = path.join(dir, 'My Script 1.0.tar.gz');
      execFileSync('tar', ['-czf', file, '-C', root, '.']);
      const contents = await inspectArchive(fs.createReadStream(file), limits());
      expect(contents.configuration).toMatchObject({ slug: 'gnu-tar-script', description: 'd' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('inspectArchive after the end of the gzip data', () => {
  const whole = tar(cliLayout({ name: 'Padded' }));
  const gz = gzip(whole);
  const zeros = (n: number) => Buffer.alloc(n);
  /** The parts as the chunks of an upload, one after another. */
  const inspectParts = (parts: Buffer[]) =>
    inspectArchive(
      (async function* () {
        yield* parts;
      })(),
      limits(),
    );
  // Two gzip members holding the tar between them.
  const members = [gzip(whole.subarray(0, 1000)), gzip(whole.subarray(1000))];

  it.each<[string, Buffer[]]>([
    ['zero padding in later chunks of 8 KiB (as the gateway sends it)', [gz, zeros(8192), zeros(8192)]],
    ['zero padding in the last chunk of the data', [Buffer.concat([gz, zeros(16384)])]],
    ['zero padding begun in the last chunk of the data and going on in later ones', [gz.subarray(0, 100), Buffer.concat([gz.subarray(100), zeros(3)]), zeros(1), zeros(8192)]],
    ['a second gzip member in the next chunk', members],
    ['a second gzip member in the same chunk', [Buffer.concat(members)]],
    ['zero padding after a second member', [members[0]!, members[1]!, zeros(8192), zeros(8192)]],
  ])('accepts %s', async (_what, parts) => {
    const contents = await inspectParts(parts);
    expect(contents.configuration.slug).toBe('padded');
    expect(contents.compressedBytes).toBe(Buffer.concat(parts).length);
  });

  it.each<[string, Buffer[]]>([
    ['text in the next chunk', [gz, Buffer.from('hello')]],
    ['text in the same chunk', [Buffer.concat([gz, Buffer.from('hello')])]],
    ['zeros, then text in a later chunk', [gz, zeros(8192), Buffer.from('hello')]],
    ['zeros, then one other byte in the same chunk', [gz, Buffer.concat([zeros(8191), Buffer.from([1])])]],
    ['zeros and then one other byte in the last chunk of the data', [Buffer.concat([gz, zeros(10), Buffer.from([1])])]],
    ['zeros, then another gzip member', [gz, zeros(512), gz]],
  ])('refuses %s', async (_what, parts) => {
    await expectRefused(inspectParts(parts), /data after the end of the gzip stream/);
  });
});

describe('inspectArchive refuses', () => {
  it('a plain tar (not gzip)', async () => {
    await expectRefused(inspect(tar(cliLayout())), /not gzip-compressed/);
  });

  it('an empty file', async () => {
    await expectRefused(inspect(Buffer.alloc(0)), /empty/);
  });

  it('gzip that is not a tar', async () => {
    await expectRefused(inspect(gzip(Buffer.from('just some text, not a tar archive\n'.repeat(40)))), /not a tar archive/);
  });

  it('gzip of nothing', async () => {
    await expectRefused(inspect(gzip(Buffer.alloc(0))), /archive is empty/);
  });

  it('corrupt gzip data', async () => {
    const bytes = gzip(tar(cliLayout()));
    const broken = Buffer.from(bytes);
    for (let i = 20; i < broken.length - 8; i += 3) broken[i] = broken[i]! ^ 0x5a;
    await expectRefused(inspect(broken), /corrupt gzip data|truncated|not a tar|checksum/);
  });

  it('truncated gzip', async () => {
    const bytes = gzip(tar(cliLayout()));
    await expectRefused(inspect(bytes.subarray(0, bytes.length - 30)), /truncated/);
  });

  it('a tar truncated inside a member', async () => {
    const whole = tar(withCli({ name: 'data.bin', data: Buffer.alloc(5000, 7) }));
    await expectRefused(inspect(gzip(whole.subarray(0, whole.length - 1024 - 3000))), /truncated/);
  });

  it('a tar without its end-of-archive blocks', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout(), 0))), /truncated/);
  });

  it('a corrupt header after the first member', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'x.py', data: 'x', badChecksum: true })))), /bad checksum/);
  });

  it('a member with an absolute path', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: '/etc/cron.d/evil', data: 'x' })))), /absolute path/);
  });

  it("a member with '..'", async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'src/../../evil.py', data: 'x' })))), /'\.\.'/);
  });

  it("a pax path override with '..'", async () => {
    const bytes = gzip(tar(withCli({ name: 'PaxHeader', type: 'x', data: paxRecords({ path: '../outside.txt' }) }, { name: 'innocent.txt', data: 'x' })));
    await expectRefused(inspect(bytes), /'\.\.'/);
  });

  it('two pax headers for one member: extractors differ on them, and a merged size hid members from the check', async () => {
    const bytes = gzip(
      tar(
        withCli(
          { name: 'PaxHeader', type: 'x', data: paxRecords({ size: '1024' }) },
          { name: 'PaxHeader', type: 'x', data: paxRecords({ comment: 'hi' }) },
          { name: 'a.txt', data: '' },
          { name: 'hidden-fifo', type: '6' },
        ),
      ),
    );
    await expectRefused(inspect(bytes), /two pax headers for one member/);
  });

  it("a pax path wins over a GNU long name, whichever came last, as GNU tar has it", async () => {
    const bytes = gzip(
      tar(withCli({ name: 'PaxHeader', type: 'x', data: paxRecords({ path: '../escape.py' }) }, { name: '././@LongLink', type: 'L', data: 'src/fine.py\0' }, { name: 'short', data: 'x' })),
    );
    await expectRefused(inspect(bytes), /'\.\.'/);
  });

  it('a pax header naming a sparse file (GNU tar takes its name and size from it)', async () => {
    const bytes = gzip(tar(withCli({ name: 'PaxHeader', type: 'x', data: paxRecords({ 'GNU.sparse.name': 'elsewhere.py' }) }, { name: 'src/other.py', data: 'x' })));
    await expectRefused(inspect(bytes), /sets 'GNU\.sparse\.name'/);
  });

  it("a file named as a directory ('src/x.py/'), which extractors make a directory", async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'src/x.py/', data: '' })))), /named as a directory but is not one/);
  });

  it('a GNU long name that is absolute', async () => {
    const bytes = gzip(tar(withCli({ name: '././@LongLink', type: 'L', data: `/tmp/${'x'.repeat(120)}\0` }, { name: 'short', data: 'x' })));
    await expectRefused(inspect(bytes), /absolute path/);
  });

  it('a symlink pointing outside', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'src/link', type: '2', linkName: '../../etc/passwd' })))), /points outside/);
  });

  it('an absolute symlink', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'link', type: '2', linkName: '/etc/passwd' })))), /points outside/);
  });

  it('a hardlink pointing outside', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'hard', type: '1', linkName: '../../etc/shadow' })))), /hardlink .* points outside/);
  });

  it('a hardlink to a member that does not exist', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'hard', type: '1', linkName: 'nowhere' })))), /earlier file/);
  });

  it('a member written through a symlink (a chain that climbs out)', async () => {
    const bytes = gzip(
      tar(
        withCli(
          { name: 'a/', type: '5' },
          { name: 'a/b', type: '2', linkName: '..' },
          { name: 'a/b/c', type: '2', linkName: '..' },
        ),
      ),
    );
    await expectRefused(inspect(bytes), /under the symlink/);
  });

  it('a symlink that leads out through another symlink, in either order', async () => {
    const up = { name: 'src/up', type: '2', linkName: '..' } as const;
    const up2 = { name: 'src/up2', type: '2', linkName: 'up/..' } as const;
    await expectRefused(inspect(gzip(tar(withCli(up, up2)))), /src\/up2.*points outside the archive through other symlinks/);
    await expectRefused(inspect(gzip(tar(withCli(up2, up)))), /src\/up2.*points outside the archive through other symlinks/);
    // Through a chain of links, each harmless alone.
    await expectRefused(inspect(gzip(tar(withCli({ name: 'x', type: '2', linkName: 'src' }, { name: 'src/y', type: '2', linkName: '../x/../..' })))), /points outside/);
  });

  it('symlinks that stay inside through others, and a loop', async () => {
    const inside = withCli({ name: 'lib', type: '2', linkName: 'src' }, { name: 'src/again', type: '2', linkName: '../lib/main.py' });
    await expect(inspect(gzip(tar(inside)))).resolves.toMatchObject({ configuration: expect.anything() });
    await expectRefused(inspect(gzip(tar(withCli({ name: 'p', type: '2', linkName: 'q' }, { name: 'q', type: '2', linkName: 'p/x' })))), /loop/);
  });

  describe('symlinks and paths crafted to make the check slow', () => {
    /** A member whose name is given in a pax record (any length). */
    const paxNamed = (name: string, member: Omit<TestMember, 'name'>): TestMember[] => [
      { name: 'PaxHeader', type: 'x', data: paxRecords({ path: name, ...(member.linkName ? { linkpath: member.linkName } : {}) }) },
      { ...member, name: 'placeholder' },
    ];

    it('a symlink target longer than Linux takes (4096 bytes), or with a segment longer than 255', async () => {
      await expectRefused(inspect(gzip(tar(withCli(...paxNamed('l', { type: '2', linkName: 'a/'.repeat(500_000) }))))), /target longer than 4096 bytes/);
      await expectRefused(inspect(gzip(tar(withCli(...paxNamed('l', { type: '2', linkName: `src/${'x'.repeat(256)}` }))))), /target segment longer than 255 bytes/);
      // At the limits, it is accepted.
      const atLimits = withCli(...paxNamed('l', { type: '2', linkName: `${'a/'.repeat(1920)}${'x'.repeat(255)}` }));
      await expect(inspect(gzip(tar(atLimits)))).resolves.toMatchObject({ members: 6 });
    });

    it('a thousand deep members and no symlink are accepted; deep members under a deep symlink beyond what is checked are refused', async () => {
      const deep = 'd/'.repeat(1990);
      const files = Array.from({ length: 1000 }, (_, i) => paxNamed(`${deep}f${i}`, { data: 'x' })).flat();
      await expect(inspect(gzip(tar(withCli(...files))))).resolves.toMatchObject({ members: 1005 });
      // Each file below is checked against the symlink's path segment by segment.
      const underLink = [...paxNamed(`${deep}link`, { type: '2', linkName: '.' }), ...Array.from({ length: 600 }, (_, i) => paxNamed(`${deep}g${i}`, { data: 'x' })).flat()];
      await expectRefused(inspect(gzip(tar(withCli(...underLink)))), /too many or too deep to check/);
    });

    it('many symlinks with long targets: refused once the walk outgrows the check', async () => {
      const links = (n: number) => Array.from({ length: n }, (_, i) => paxNamed(`l${i}`, { type: '2', linkName: `${'d/'.repeat(2000)}src` })).flat();
      await expectRefused(inspect(gzip(tar(withCli(...links(600))))), /too many or too deep to check/);
      // A few are checked and accepted.
      await expect(inspect(gzip(tar(withCli(...links(20)))))).resolves.toMatchObject({ members: 25 });
    });
  });

  it('two members at one path (which wins depends on the extractor)', async () => {
    const [config] = cliLayout();
    await expectRefused(inspect(gzip(tar(withCli({ ...config!, name: './configuration.json', data: '{"name": "Other"}' })))), /appears twice/);
    await expectRefused(inspect(gzip(tar(withCli({ name: 'src', type: '2', linkName: 'lib' })))), /appears twice/);
  });

  describe('a tree tar cannot extract, in either order', () => {
    const file = { name: 'data', data: 'x' };
    const inner = { name: 'data/inner', data: 'y' };
    it.each<[string, TestMember[], RegExp]>([
      ['a member under an earlier file', [file, inner], /member "data\/inner" lies under "data", which is a file/],
      ['a file where an earlier member made a directory', [inner, file], /member "data\/inner" lies under "data", which is a file/],
      ['a directory deeper under a file', [file, { name: 'data/a/', type: '5' }], /member "data\/a" lies under "data", which is a file/],
      ['a member under a hardlink', [{ name: 'f', data: 'x' }, { name: 'data', type: '1', linkName: 'f' }, inner], /lies under "data", which is a hardlink/],
      ['a hardlink where an earlier member made a directory', [{ name: 'f', data: 'x' }, inner, { name: 'data', type: '1', linkName: 'f' }], /lies under "data", which is a hardlink/],
      ['a symlink where an earlier member made a directory', [inner, { name: 'data', type: '2', linkName: 'src' }], /lies under "data", which is a symlink/],
      ['a file at an explicit directory', [{ name: 'data/', type: '5' }, inner, file], /"data" appears twice/],
    ])('%s', async (_what, members, message) => {
      const bytes = gzip(tar(withCli(...members)));
      await expectRefused(inspect(bytes), message);
      expect(gnuTarExtracts(bytes)).not.toBe(true);
    });

    it('but accepts names that share a prefix and directories given again', async () => {
      const bytes = gzip(
        tar(withCli(file, { name: 'data-x/inner', data: 'y' }, { name: 'data.txt', data: 'z' }, { name: 'd/', type: '5' }, { name: 'd/e/f', data: '' }, { name: 'd/e/', type: '5' }, { name: 'd', type: '5' })),
      );
      await expect(inspect(bytes)).resolves.toMatchObject({ members: 12 });
      expect(gnuTarExtracts(bytes)).not.toBe(false);
    });
  });

  it('a global pax header setting a path', async () => {
    const bytes = gzip(tar(withCli({ name: 'pax_global_header', type: 'g', data: paxRecords({ path: '../../evil' }) }, { name: 'innocent.txt', data: 'x' })));
    await expectRefused(inspect(bytes), /global pax header sets 'path'/);
  });

  it('a character device', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'dev/null', type: '3' })))), /device file/);
  });

  it('a block device', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'sda', type: '4' })))), /device file/);
  });

  it('a FIFO', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'pipe', type: '6' })))), /FIFO/);
  });

  it('an unsupported member type', async () => {
    await expectRefused(inspect(gzip(tar(withCli({ name: 'sparse', type: 'S', data: 'x' })))), /unsupported member type 'S'/);
  });

  it('more than 10,000 members (12,000)', async () => {
    const members = withCli(...Array.from({ length: 12_000 }, (_, i) => ({ name: `src/f${i}.py`, data: '' })));
    await expectRefused(inspect(gzip(tar(members))), /more than 10000 members/);
  });

  it('a gzip bomb (over 500 MB inflated from about half a megabyte)', async () => {
    // A tar header announcing a 600 MB file of zeros, compressed as it is generated.
    const announced = 600 * 1024 * 1024;
    const gz = zlib.createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gz.on('data', (c: Buffer) => parts.push(c));
    const done = new Promise((r) => gz.on('end', r));
    gz.write(tar(cliLayout(), 0));
    gz.write(tarHeader({ name: 'zeros.bin' }, announced));
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    for (let written = 0; written < announced; written += zeros.length) {
      if (!gz.write(zeros)) await new Promise((r) => gz.once('drain', r));
    }
    gz.end();
    await done;
    const bomb = Buffer.concat(parts);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const started = Date.now();
    await expectRefused(inspect(bomb, {}, 65536), /more than 500 MB once uncompressed/);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  it('more than the upload limit', async () => {
    const bytes = gzip(tar(withCli({ name: 'noise.bin', data: randomBytes(200_000) })));
    await expectRefused(inspect(bytes, { maxCompressedBytes: 10_000 }), /larger than the upload limit of 9.8 KB/);
  });

  it('a pax size that runs past the end', async () => {
    const bytes = gzip(tar(withCli({ name: 'PaxHeader', type: 'x', data: paxRecords({ size: '999999' }) }, { name: 'x.bin', data: 'x' })));
    await expectRefused(inspect(bytes), /truncated/);
  });

  it('an archive that takes too long to arrive', async () => {
    const head = gzip(tar(cliLayout())).subarray(0, 20);
    const slow = new Readable({ read() {} });
    slow.push(head);
    await expectRefused(inspectArchive(slow, limits({ timeoutMs: 200 })), /took too long/);
    slow.destroy();
  });

  it('a missing configuration.json', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout().slice(1)))), /configuration\.json is missing/);
  });

  it('configuration.json only below the root', async () => {
    const members = cliLayout().map((m) => (m.name === 'configuration.json' ? { ...m, name: 'sub/configuration.json' } : m));
    await expectRefused(inspect(gzip(tar(members))), /configuration\.json is missing at the root/);
  });

  it('configuration.json as a symlink', async () => {
    const members = [...cliLayout().slice(1), { name: 'real.json', data: '{"name":"x"}' }, { name: 'configuration.json', type: '2', linkName: 'real.json' }];
    await expectRefused(inspect(gzip(tar(members))), /configuration\.json must be a regular file, not a symlink/);
  });

  it('invalid JSON in configuration.json', async () => {
    const members = cliLayout().map((m) => (m.name === 'configuration.json' ? { ...m, data: '{"name": "x",' } : m));
    await expectRefused(inspect(gzip(tar(members))), /configuration\.json: not valid JSON/);
  });

  it('a configuration.json without a name', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout({ description: 'nameless' })))), /'name' is required/);
  });

  it('a huge configuration.json', async () => {
    const members = cliLayout().map((m) => (m.name === 'configuration.json' ? { ...m, data: `{"name":"x","pad":"${'p'.repeat(2 * 1024 * 1024)}"}` } : m));
    await expectRefused(inspect(gzip(tar(members))), /configuration\.json is larger than 1 MB/);
  });

  it('a python3 script without src/main.py', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout().filter((m) => m.name !== 'src/main.py')))), /src\/main\.py is missing/);
  });

  it('a NUL byte in requirements.txt (no text column holds it)', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout({ name: 'x' }, 'numpy\n\0pandas\n')))), /requirements\.txt holds a NUL character .* \(line 2\)/);
  });

  it('a NUL or an unpaired surrogate anywhere in configuration.json', async () => {
    await expectRefused(inspect(gzip(tar(cliLayout({ name: 'x', description: 'a\u0000b' })))), /configuration\.json: 'description' holds a NUL character/);
    await expectRefused(inspect(gzip(tar(cliLayout({ name: 'x', extra: { note: 'a\ud800' } })))), /configuration\.json: 'extra\.note' holds .* an unpaired surrogate/);
  });

  it('requirements.txt that is not UTF-8', async () => {
    const members = cliLayout().map((m) => (m.name === 'requirements.txt' ? { ...m, data: Buffer.from([0x66, 0xff, 0xfe, 0x0a]) } : m));
    await expectRefused(inspect(gzip(tar(members))), /requirements\.txt is not UTF-8/);
  });
});
