import zlib from 'node:zlib';
import type { Readable, Transform } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { hasBody } from './body';
import { HttpError } from './http-errors';

/**
 * Uploads: a `multipart/form-data` request read as a stream. The file part is handed on
 * as soon as its headers arrive and its bytes flow through at the pace the consumer reads
 * them (backpressure reaches the client's socket), so an archive is never held whole in
 * memory. Limits apply while the bytes arrive.
 */

/** Room for the other parts and the multipart framing beside the file. */
export const multipartOverheadBytes = 1024 * 1024;

/** The file part of an upload. */
export interface FilePart {
  /** The part's file name as sent, without any directory part. */
  fileName: string;
  /** The file's bytes as they arrive; fails when the upload does (limit, broken body, client gone). */
  chunks: AsyncIterable<Uint8Array>;
}

export interface FilePartOptions {
  /** The part's name, e.g. `file`. */
  field: string;
  /** The most bytes the file may have (UPLOAD_LIMIT_BYTES); more is a 413. */
  limit: number;
}

/** How long a refused upload is read on (and thrown away) so the client can read the answer. */
export const drainTimeoutMs = 30_000;

/**
 * Reads the rest of a request body and throws it away, up to `maxBytes` more bytes or
 * `timeoutMs`, so that a client still sending an upload gets to read the error answer
 * (many clients fail with EPIPE instead when the server closes first). Past either bound
 * the answer is sent anyway and closes the connection.
 */
export function drainRequest(req: Request, maxBytes: number, timeoutMs = drainTimeoutMs): Promise<void> {
  if (req.complete || req.destroyed || !hasBody(req)) return Promise.resolve();
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', done);
      req.off('close', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) done();
    };
    const timer = setTimeout(done, timeoutMs);
    req.on('data', onData);
    req.on('end', done);
    req.on('close', done);
    req.resume();
  });
}

/**
 * Runs an upload route's work; when it fails before the body was read to its end, the
 * rest of the body (up to `maxBytes`) is drained before the error is answered.
 */
export async function drainingOnError<T>(req: Request, maxBytes: number, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    await drainRequest(req, maxBytes);
    throw err;
  }
}

const tooLarge = (what: string, limit: number) => new HttpError(413, 'payload_too_large', `${what} exceeds the limit of ${limit} bytes`);
const badBody = (detail: string) => new HttpError(400, 'invalid_argument', detail);

/** The media type of the request, lower case, without parameters ('' when absent). */
export function mediaTypeOf(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** True when the request says it is `multipart/form-data`. */
export function isMultipart(req: Request): boolean {
  return mediaTypeOf(req) === 'multipart/form-data';
}

/** Gunzip or inflate for a Content-Encoding; undefined for identity; 415 for anything else. */
function inflaterFor(header: string | undefined): Transform | undefined {
  const encoding = (header ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return undefined;
  if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.createGunzip();
  if (encoding === 'deflate') return zlib.createInflate();
  const named = /^[a-z0-9._-]{1,32}$/.test(encoding) ? `: ${encoding}` : '';
  throw new HttpError(415, 'unsupported_media_type', `Unsupported Content-Encoding${named}`);
}

/**
 * Reads a multipart/form-data request and passes its file part named `options.field` to
 * `consume` as soon as the part begins; resolves with what `consume` returns. Other parts
 * are read and ignored. The file's bytes end only once the whole body was read, so a second
 * file part of that name refuses the upload (400) before the consumer sees the end. The
 * consumer gets an `AbortSignal` that fires when the upload fails, so it can cancel what it
 * started.
 *
 * - not multipart/form-data: 415; no boundary, a broken body or no such part: 400;
 * - the file beyond `limit`, or the whole body (as sent or inflated) beyond `limit` plus
 *   `multipartOverheadBytes`: 413, decided while streaming.
 *
 * When the upload fails, the consumer's signal aborts and parsing stops; the caller drains
 * or closes (see `drainingOnError`).
 */
export function streamFilePart<T>(
  req: Request,
  options: FilePartOptions,
  consume: (file: FilePart, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (!isMultipart(req)) {
    throw new HttpError(415, 'unsupported_media_type', `Content-Type must be multipart/form-data with a file part named '${options.field}'`);
  }
  if (!hasBody(req)) throw badBody(`The body must be multipart/form-data with a file part named '${options.field}'`);
  const bodyLimit = options.limit + multipartOverheadBytes;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > bodyLimit) throw tooLarge('Request body', bodyLimit);
  const inflater = inflaterFor(req.headers['content-encoding']);
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // The file's own limit is checked below; one byte more tells "at the limit" from "beyond".
      limits: { fileSize: options.limit + 1, fields: 100, fieldSize: 64 * 1024, parts: 200, headerPairs: 50 },
      fileHwm: 64 * 1024,
      // File names are UTF-8 (RFC 7578), not latin1.
      defParamCharset: 'utf8',
    });
  } catch (err) {
    throw badBody(`Malformed multipart/form-data header: ${err instanceof Error ? err.message : 'invalid'}`);
  }

  return new Promise<T>((resolve, reject) => {
    const abort = new AbortController();
    let settled = false;
    let found = false;
    let fieldNamedFile = false;
    let received = 0;
    let inflated = 0;
    // The body's end: the file's last bytes are handed on only once the parts after it were
    // read, so that a second file part (or a broken body) refuses the whole upload.
    let bodyEnded!: () => void;
    let bodyFailed!: (err: unknown) => void;
    const wholeBody = new Promise<void>((resolve, reject) => {
      bodyEnded = resolve;
      bodyFailed = reject;
    });
    wholeBody.catch(() => undefined);

    const source: Readable = inflater ?? req;

    const stop = () => {
      req.off('data', onReceived);
      req.off('close', onClose);
      req.unpipe();
      if (inflater) {
        inflater.off('data', onInflated);
        inflater.unpipe();
        inflater.destroy();
      }
      parser.destroy();
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      bodyFailed(err);
      abort.abort(err);
      stop();
      reject(err);
    };
    const succeed = (value: T) => {
      if (settled) return;
      settled = true;
      req.off('close', onClose);
      resolve(value);
    };

    function onReceived(chunk: Buffer) {
      received += chunk.length;
      if (received <= bodyLimit) return;
      if (settled) req.destroy();
      else fail(tooLarge('Request body', bodyLimit));
    }
    function onInflated(chunk: Buffer) {
      inflated += chunk.length;
      if (inflated > bodyLimit) fail(tooLarge('Inflated request body', bodyLimit));
    }
    function onClose() {
      if (!req.complete) fail(badBody('The upload was interrupted'));
    }

    parser.on('file', (name, stream, info) => {
      // Destroying the parser (the consumer failed, e.g. the script service went away
      // mid-upload) destroys the part's stream with an error nobody may be reading any more:
      // without a listener that error would take the process down. It is answered by `fail`.
      stream.on('error', () => undefined);
      if (found && name === options.field) {
        stream.resume();
        fail(badBody(`The multipart body has more than one file part named '${options.field}'`));
        return;
      }
      if (settled || found || name !== options.field) {
        stream.resume();
        return;
      }
      found = true;
      // Deferred: busboy still touches the part's stream after emitting `limit`.
      stream.on('limit', () => process.nextTick(() => fail(tooLarge(`The file '${options.field}'`, options.limit))));
      // A stream destroyed with an error (limit, broken body) makes this iterator throw.
      const chunks = (async function* () {
        let bytes = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          // Never a byte past the limit to the consumer, whatever the parser delivered.
          if (bytes > options.limit) {
            const err = tooLarge(`The file '${options.field}'`, options.limit);
            fail(err);
            throw err;
          }
          yield chunk;
        }
        await wholeBody;
      })();
      consume({ fileName: info.filename ?? '', chunks }, abort.signal).then(succeed, (err: unknown) => {
        // A failure of the upload itself explains more than the consumer's cancelled call.
        fail(abort.signal.aborted ? abort.signal.reason : err);
      });
    });
    parser.on('field', (name) => {
      if (name === options.field) fieldNamedFile = true;
    });
    parser.on('finish', () => {
      bodyEnded();
      if (found) return;
      fail(
        badBody(
          fieldNamedFile
            ? `The part '${options.field}' must be a file (give it a filename)`
            : `The multipart body has no file part named '${options.field}'`,
        ),
      );
    });
    parser.on('error', (err: unknown) => {
      fail(badBody(`Malformed multipart/form-data body: ${err instanceof Error ? err.message : 'invalid'}`));
    });
    req.on('data', onReceived);
    req.on('close', onClose);
    req.on('error', () => fail(badBody('The request body could not be read')));
    if (inflater) {
      inflater.on('data', onInflated);
      inflater.on('error', () => fail(badBody('Malformed compressed body')));
      req.pipe(inflater);
    }
    source.pipe(parser);
  });
}
