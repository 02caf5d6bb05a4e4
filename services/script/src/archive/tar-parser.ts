/**
 * A streaming tar reader (POSIX ustar, pax extended headers, GNU long names). It never
 * holds more than one 512-byte header or one capped metadata record in memory: member
 * contents are handed to the visitor chunk by chunk as they arrive.
 */

export type TarEntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'character-device'
  | 'block-device'
  | 'fifo'
  | 'unsupported';

export interface TarEntryHeader {
  /** The member name as stored (pax and GNU long names applied), not yet checked. */
  name: string;
  type: TarEntryType;
  /** The raw type flag, for messages. */
  typeFlag: string;
  size: number;
  /** Link target of a symlink or hardlink. */
  linkName: string;
  mode: number;
}

/** Receives members in order: `entry`, then `data` for its bytes, then `entryEnd`. */
export interface TarVisitor {
  entry(header: TarEntryHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

/** The bytes are not a well-formed tar stream. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const block = 512;

const typeFlags: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/** Metadata records that describe the next member instead of being one. */
const metaFlags = new Set(['x', 'g', 'L', 'K']);

type State =
  | { kind: 'header' }
  | { kind: 'meta'; flag: string; remaining: number; padding: number; parts: Buffer[] }
  | { kind: 'data'; remaining: number; padding: number }
  | { kind: 'padding'; remaining: number }
  | { kind: 'end' };

/**
 * What the metadata records before a member say of it. GNU tar, which extracts, lets a pax
 * path or link path win over a GNU long name or link whichever came first: so does this.
 */
interface Pending {
  /** A pax extended header (`x`) came: a second one for one member is refused. */
  pax?: boolean;
  paxPath?: string;
  paxLinkPath?: string;
  gnuPath?: string;
  gnuLinkPath?: string;
  size?: number;
}

function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

/** A numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function numeric(buf: Buffer, start: number, length: number, what: string): number {
  const field = buf.subarray(start, start + length);
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) throw new TarFormatError(`negative ${what} in tar header`);
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + field[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${what} too large in tar header`);
    }
    return value;
  }
  const text = cString(buf, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid ${what} in tar header`);
  const value = parseInt(text, 8);
  if (!Number.isSafeInteger(value)) throw new TarFormatError(`${what} too large in tar header`);
  return value;
}

function checksumMatches(header: Buffer): boolean {
  const stored = cString(header, 148, 8).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < block; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const expected = parseInt(stored, 8);
  return expected === unsigned || expected === signed;
}

function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Parses pax records `<len> <key>=<value>\n`. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < data.length) {
    if (data[offset] === 0) break;
    const space = data.indexOf(0x20, offset);
    if (space === -1) throw new TarFormatError('malformed pax header');
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= space - offset || offset + length > data.length) {
      throw new TarFormatError('malformed pax header');
    }
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq === -1 || data[offset + length - 1] !== 0x0a) throw new TarFormatError('malformed pax header');
    records.set(record.slice(0, eq), record.slice(eq + 1));
    offset += length;
  }
  return records;
}

const padTo = (size: number) => (block - (size % block)) % block;

export interface TarParserOptions {
  /** The largest pax or GNU long-name record kept in memory. */
  maxMetaBytes: number;
}

/** Push-based: `write` chunks in order, then `end`. Throws TarFormatError. */
export class TarParser {
  private state: State = { kind: 'header' };
  private headerBuf = Buffer.alloc(block);
  private headerFill = 0;
  private pending: Pending = {};
  private sawHeader = false;
  private zeroBlocks = 0;

  constructor(
    private readonly visitor: TarVisitor,
    private readonly options: TarParserOptions,
  ) {}

  write(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const state = this.state;
      switch (state.kind) {
        case 'end':
          // Anything after the end-of-archive marker (record padding) is ignored.
          return;
        case 'header': {
          const take = Math.min(block - this.headerFill, chunk.length - offset);
          chunk.copy(this.headerBuf, this.headerFill, offset, offset + take);
          this.headerFill += take;
          offset += take;
          if (this.headerFill === block) {
            this.headerFill = 0;
            this.onHeader(this.headerBuf);
          }
          break;
        }
        case 'meta': {
          const take = Math.min(state.remaining, chunk.length - offset);
          state.parts.push(Buffer.from(chunk.subarray(offset, offset + take)));
          state.remaining -= take;
          offset += take;
          if (state.remaining === 0) {
            this.onMeta(state.flag, Buffer.concat(state.parts));
            this.state = state.padding > 0 ? { kind: 'padding', remaining: state.padding } : { kind: 'header' };
          }
          break;
        }
        case 'data': {
          const take = Math.min(state.remaining, chunk.length - offset);
          if (take > 0) this.visitor.data(chunk.subarray(offset, offset + take));
          state.remaining -= take;
          offset += take;
          if (state.remaining === 0) {
            this.visitor.entryEnd();
            this.state = state.padding > 0 ? { kind: 'padding', remaining: state.padding } : { kind: 'header' };
          }
          break;
        }
        case 'padding': {
          const take = Math.min(state.remaining, chunk.length - offset);
          state.remaining -= take;
          offset += take;
          if (state.remaining === 0) this.state = { kind: 'header' };
          break;
        }
      }
    }
  }

  /** The input ended: throws when it ended inside a member or before the end marker. */
  end(): void {
    if (this.state.kind === 'end') return;
    if (!this.sawHeader && this.headerFill === 0 && this.state.kind === 'header') {
      throw new TarFormatError('the archive is empty');
    }
    if (this.state.kind === 'header' && this.headerFill === 0 && this.zeroBlocks > 0) return;
    throw new TarFormatError('the archive is truncated');
  }

  private onHeader(header: Buffer): void {
    if (isZeroBlock(header)) {
      if (!this.sawHeader) throw new TarFormatError('not a tar archive');
      this.zeroBlocks++;
      // Two zero blocks end the archive; some writers stop after one.
      if (this.zeroBlocks >= 2) this.state = { kind: 'end' };
      return;
    }
    if (this.zeroBlocks > 0) throw new TarFormatError('data after an end-of-archive block');
    if (!checksumMatches(header)) {
      throw new TarFormatError(this.sawHeader ? 'corrupt tar header (bad checksum)' : 'not a tar archive');
    }
    this.sawHeader = true;
    const typeFlag = String.fromCharCode(header[156]!);
    const headerSize = numeric(header, 124, 12, 'size');

    if (metaFlags.has(typeFlag)) {
      if (headerSize > this.options.maxMetaBytes) throw new TarFormatError('tar metadata record too large');
      this.state =
        headerSize > 0
          ? { kind: 'meta', flag: typeFlag, remaining: headerSize, padding: padTo(headerSize), parts: [] }
          : { kind: 'header' };
      if (headerSize === 0) this.onMeta(typeFlag, Buffer.alloc(0));
      return;
    }

    const magic = header.subarray(257, 263).toString('latin1');
    let name = cString(header, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cString(header, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pending = this.pending;
    this.pending = {};
    const type = typeFlags[typeFlag] ?? 'unsupported';
    const size = pending.size ?? headerSize;
    const entry: TarEntryHeader = {
      name: pending.paxPath ?? pending.gnuPath ?? name,
      type,
      typeFlag,
      // Links, directories and devices carry no data even when a size is written.
      size: type === 'file' || type === 'unsupported' ? size : 0,
      linkName: pending.paxLinkPath ?? pending.gnuLinkPath ?? cString(header, 157, 100),
      mode: numeric(header, 100, 8, 'mode'),
    };
    this.visitor.entry(entry);
    if (entry.size > 0) {
      this.state = { kind: 'data', remaining: entry.size, padding: padTo(entry.size) };
    } else {
      this.visitor.entryEnd();
    }
  }

  private onMeta(flag: string, data: Buffer): void {
    switch (flag) {
      case 'x': {
        // Extractors differ on two (GNU tar keeps the last, others merge them): a member's
        // name and size must be what the extraction will see.
        if (this.pending.pax) throw new TarFormatError('two pax headers for one member');
        this.pending.pax = true;
        const records = parsePax(data);
        // GNU tar takes a sparse file's name and size from these, which this check does not follow.
        for (const key of records.keys()) {
          if (key.startsWith('GNU.sparse.')) throw new TarFormatError(`a pax header sets '${key.slice(0, 40)}' (sparse files are not accepted)`);
        }
        const path = records.get('path');
        const linkPath = records.get('linkpath');
        const size = records.get('size');
        if (path !== undefined) this.pending.paxPath = path;
        if (linkPath !== undefined) this.pending.paxLinkPath = linkPath;
        if (size !== undefined) {
          if (!/^\d+$/.test(size) || !Number.isSafeInteger(Number(size))) throw new TarFormatError('invalid size in pax header');
          this.pending.size = Number(size);
        }
        break;
      }
      case 'g': {
        // Global pax records: checked for form, otherwise ignored. An extractor may apply a
        // global path, link path or size to the members that follow, which this check would
        // not see: those are refused.
        const records = parsePax(data);
        for (const key of ['path', 'linkpath', 'size']) {
          if (records.has(key)) throw new TarFormatError(`a global pax header sets '${key}'`);
        }
        break;
      }
      case 'L':
        if (this.pending.gnuPath !== undefined) throw new TarFormatError('two GNU long names for one member');
        this.pending.gnuPath = cString(data, 0, data.length);
        break;
      case 'K':
        if (this.pending.gnuLinkPath !== undefined) throw new TarFormatError('two GNU long link names for one member');
        this.pending.gnuLinkPath = cString(data, 0, data.length);
        break;
    }
  }
}
