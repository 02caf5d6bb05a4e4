import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

/** Bytes other than zero padding follow the end of the gzip data. */
export class TrailingDataError extends Error {
  constructor() {
    super('data after the end of the gzip stream');
    this.name = 'TrailingDataError';
  }
}

function allZero(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

/**
 * Gunzip for uploads: every gzip member in turn, then zero bytes only, however the bytes
 * are chunked. Zero padding (from `dd conv=sync` or tape blocking) is what gzip(1) and tar
 * ignore; anything else after the gzip data fails with TrailingDataError.
 *
 * zlib's own gunzip stream ends its output at the first zero byte after a member and then
 * breaks when more input arrives; here it is fed one chunk at a time and, once it has
 * stopped short of the end of a chunk, no longer fed. The inflated bytes are passed on as
 * the reader takes them (zlib waits while the reader is behind), never gathered.
 */
export class PaddedGunzip extends Transform {
  private readonly inflater = zlib.createGunzip();
  /** Compressed bytes handed to the inflater. */
  private handed = 0;
  /** The gzip data has ended: what follows must be zero padding. */
  private padding = false;
  /** Settles once the inflater has given every inflated byte, or has failed. */
  private readonly inflated: Promise<void>;

  constructor() {
    super();
    this.inflater.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.inflater.pause();
    });
    this.inflated = new Promise((resolve, reject) => {
      this.inflater.once('end', resolve);
      this.inflater.once('error', reject);
    });
    // The failure reaches the reader by this stream's destruction.
    this.inflated.catch(() => undefined);
    this.inflater.on('error', (err) => this.destroy(err));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.padding) return callback(allZero(chunk) ? null : new TrailingDataError());
    this.handed += chunk.length;
    this.inflater.write(chunk, (err) => {
      if (err) return callback(err);
      // The inflater leaves unread only what follows the end of the gzip data.
      const unread = this.handed - this.inflater.bytesWritten;
      if (unread === 0) return callback();
      this.padding = true;
      callback(allZero(chunk.subarray(chunk.length - unread)) ? null : new TrailingDataError());
    });
  }

  override _flush(callback: TransformCallback): void {
    if (!this.padding) this.inflater.end();
    this.inflated.then(() => callback(), callback);
  }

  override _read(size: number): void {
    this.inflater.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inflater.destroy();
    callback(err);
  }
}
