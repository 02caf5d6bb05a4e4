import { InvalidArgument } from '@gef/common';
import type { ArtifactStore, StagedArtifact } from '../artifacts/artifact-store';
import { Channel } from './channel';
import { inspectArchive, type ArchiveContents } from './inspect-archive';
import { formatBytes, type ArchiveLimits } from './limits';

export interface ReceivedArchive {
  /** The bytes, hashed and staged; the caller commits or discards them. */
  staged: StagedArtifact;
  contents: ArchiveContents;
}

/**
 * Streams an upload once, into the artifact store (staged, not yet visible) and through
 * the archive checks at the same time, with the upload limit applied as bytes arrive.
 * When anything fails the staged bytes are removed and the most telling error (a
 * refusal of the archive before a broken stream, the checks' own before the pump's) is
 * thrown.
 */
export async function receiveArchive(
  source: AsyncIterable<Uint8Array>,
  store: ArtifactStore,
  limits: ArchiveLimits,
): Promise<ReceivedArchive> {
  const toStore = new Channel();
  const toCheck = new Channel();
  const staging = store.stage(toStore);
  const checking = inspectArchive(toCheck, limits);
  const pumping = (async () => {
    let received = 0;
    for await (const chunk of source) {
      if (chunk.length === 0) continue;
      received += chunk.length;
      if (received > limits.maxCompressedBytes) {
        throw new InvalidArgument(`Invalid archive: larger than the upload limit of ${formatBytes(limits.maxCompressedBytes)}`, 'invalid_archive');
      }
      await Promise.all([toStore.push(chunk), toCheck.push(chunk)]);
    }
    toStore.end();
    toCheck.end();
  })();
  const stopAll = (err: unknown) => {
    toStore.fail(err);
    toCheck.fail(err);
  };

  const [pumped, staged, checked] = await Promise.allSettled([
    pumping.catch((err: unknown) => {
      stopAll(err);
      throw err;
    }),
    staging.catch((err: unknown) => {
      stopAll(err);
      throw err;
    }),
    checking.catch((err: unknown) => {
      stopAll(err);
      throw err;
    }),
  ]);

  if (pumped.status === 'fulfilled' && staged.status === 'fulfilled' && checked.status === 'fulfilled') {
    return { staged: staged.value, contents: checked.value };
  }
  if (staged.status === 'fulfilled') await staged.value.discard();
  // The checks first: when they stop, the pump and the store fail for that reason alone.
  const failures = [checked, pumped, staged].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  throw failures.find((e) => e instanceof InvalidArgument) ?? failures[0];
}
