import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgument } from '@gef/common';
import { parseConfiguration, type ScriptConfiguration } from '../domain/configuration';
import { unstorableWhat } from '@gef/common';
import { unstorableLine } from '../domain/storable-text';
import { formatBytes, type ArchiveLimits } from './limits';
import { ArchiveRuleError, MemberChecker, type CheckedMembers } from './member-checker';
import { PaddedGunzip, TrailingDataError } from './padded-gunzip';
import { TarFormatError, TarParser } from './tar-parser';

/** What an accepted archive holds that the platform needs. */
export interface ArchiveContents {
  configuration: ScriptConfiguration;
  /** `requirements.txt` as text; empty when the archive has none. */
  requirements: string;
  members: number;
  compressedBytes: number;
  inflatedBytes: number;
}

const refuse = (message: string) => new InvalidArgument(`Invalid archive: ${message}`, 'invalid_archive');

/** Counts compressed bytes and checks the gzip magic before zlib sees anything. */
class CompressedGate extends Transform {
  bytes = 0;
  refusal: InvalidArgument | undefined;
  private head = Buffer.alloc(0);

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) return this.fail(callback, `larger than the upload limit of ${formatBytes(this.max)}`);
    if (this.head.length < 2) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 2 - this.head.length)]);
      if (this.head.length >= 1 && this.head[0] !== 0x1f) return this.fail(callback, 'not gzip-compressed');
      if (this.head.length === 2 && this.head[1] !== 0x8b) return this.fail(callback, 'not gzip-compressed');
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes === 0) return this.fail(callback, 'the file is empty');
    if (this.head.length < 2) return this.fail(callback, 'not gzip-compressed');
    callback();
  }

  private fail(callback: TransformCallback, message: string): void {
    this.refusal = refuse(message);
    callback(this.refusal);
  }
}

function translate(err: unknown, timedOut: boolean): Error {
  if (err instanceof InvalidArgument) return err;
  if (timedOut) return refuse('checking it took too long');
  if (err instanceof TarFormatError || err instanceof ArchiveRuleError || err instanceof TrailingDataError) return refuse(err.message);
  const code = (err as { code?: string }).code;
  if (code === 'Z_BUF_ERROR') return refuse('the gzip data is truncated');
  // zlib's answer where a further member would start (the first one's header passed the gate).
  if (code === 'Z_DATA_ERROR' && (err as Error).message === 'incorrect header check') return refuse('data after the end of the gzip stream');
  if (code === 'Z_DATA_ERROR' || code === 'Z_STREAM_ERROR' || code === 'Z_NEED_DICT') return refuse('corrupt gzip data');
  return err instanceof Error ? err : new Error(String(err));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks an uploaded script archive as it streams: gzip (zero padding after it allowed),
 * tar, member rules, limits and time, then the files the platform reads. Nothing is
 * extracted and only the small files it needs are held in memory. Refuses with
 * InvalidArgument (`reason: invalid_archive`).
 */
export async function inspectArchive(
  source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  limits: ArchiveLimits,
): Promise<ArchiveContents> {
  const gate = new CompressedGate(limits.maxCompressedBytes);
  const checker = new MemberChecker(limits);
  const parser = new TarParser(checker, { maxMetaBytes: 1024 * 1024 });
  let inflated = 0;
  // The first refusal, kept: pipeline may report the destruction it caused instead.
  let refusal: unknown;
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  try {
    await pipeline(
      source,
      gate,
      new PaddedGunzip(),
      async (stream: AsyncIterable<Buffer>) => {
        try {
          for await (const chunk of stream) {
            inflated += chunk.length;
            if (inflated > limits.maxInflatedBytes) throw refuse(`more than ${formatBytes(limits.maxInflatedBytes)} once uncompressed`);
            parser.write(chunk);
          }
          parser.end();
        } catch (err) {
          refusal ??= err;
          throw err;
        }
      },
      { signal: deadline },
    );
  } catch (err) {
    throw translate(gate.refusal ?? refusal ?? err, deadline.aborted);
  }

  let members: CheckedMembers;
  try {
    members = checker.result();
  } catch (err) {
    throw translate(err, false);
  }
  const configProblem = members.problems.get('configuration.json');
  if (configProblem) throw refuse(configProblem);
  if (!members.configuration) throw refuse('configuration.json is missing at the root of the archive');
  let configurationText: string;
  let requirements = '';
  try {
    configurationText = utf8.decode(members.configuration);
  } catch {
    throw refuse('configuration.json is not UTF-8 text');
  }
  const configuration = parseConfiguration(configurationText);
  const requirementsProblem = members.problems.get('requirements.txt');
  if (requirementsProblem) throw refuse(requirementsProblem);
  if (members.requirements) {
    try {
      requirements = utf8.decode(members.requirements);
    } catch {
      throw refuse('requirements.txt is not UTF-8 text');
    }
    // Stored as text with the version; a NUL would fail there, as a lost connection.
    const line = unstorableLine(requirements);
    if (line !== undefined) throw refuse(`requirements.txt holds ${unstorableWhat} (line ${line})`);
  }
  if (configuration.runtime === 'python3' && !members.hasMainPy) {
    throw refuse(members.problems.get('src/main.py') ?? 'src/main.py is missing (python3 scripts need it)');
  }
  return { configuration, requirements, members: members.members, compressedBytes: gate.bytes, inflatedBytes: inflated };
}
