import zlib from 'node:zlib';

/** A tar member for tests; anything may be set, including hostile values. */
export interface TestMember {
  name: string;
  data?: Buffer | string;
  /** Tar type flag: '0' file (default), '1' hardlink, '2' symlink, '3' char dev, '5' dir, '6' FIFO, 'x' pax, 'L' GNU long name. */
  type?: string;
  linkName?: string;
  mode?: number;
  /** ustar prefix field. */
  prefix?: string;
  /** Overrides the size written in the header (data is still written as given). */
  size?: number;
  /** Corrupts the checksum. */
  badChecksum?: boolean;
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

/** One 512-byte ustar header. */
export function tarHeader(m: TestMember, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(m.name, 0, 100, 'utf8');
  h.write(octal(m.mode ?? 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(m.size ?? size, 12), 124, 'ascii');
  h.write(octal(1_700_000_000, 12), 136, 'ascii');
  h.write(m.type ?? '0', 156, 'ascii');
  h.write(m.linkName ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'ascii');
  if (m.prefix) h.write(m.prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  if (m.badChecksum) sum += 1;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** A member: header, data, padding to 512. */
export function tarMember(m: TestMember): Buffer {
  const data = typeof m.data === 'string' ? Buffer.from(m.data) : (m.data ?? Buffer.alloc(0));
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([tarHeader(m, data.length), data, Buffer.alloc(pad)]);
}

/** A pax record list as the body of an 'x' member. */
export function paxRecords(records: Record<string, string>): Buffer {
  const parts = Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    return `${len}${body}`;
  });
  return Buffer.from(parts.join(''));
}

/** A whole tar stream with the two zero blocks that end it. */
export function tar(members: TestMember[], endBlocks = 2): Buffer {
  return Buffer.concat([...members.map(tarMember), Buffer.alloc(512 * endBlocks)]);
}

export const gzip = (data: Buffer): Buffer => zlib.gzipSync(data);

/** The Trends.Earth CLI layout of a script. */
export function cliLayout(config: Record<string, unknown> = { name: 'My First Script' }, requirements = ''): TestMember[] {
  return [
    { name: 'configuration.json', data: JSON.stringify(config) },
    { name: 'requirements.txt', data: requirements },
    { name: 'src/', type: '5', mode: 0o755 },
    { name: 'src/__init__.py', data: '' },
    { name: 'src/main.py', data: 'def run(params, logger):\n    return "OK"\n' },
  ];
}

/** Splits a buffer into chunks of a given size, as a stream would deliver it. */
export async function* chunks(data: Buffer, size = 7919): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
