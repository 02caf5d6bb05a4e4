import { InvalidArgument } from '@gef/common';
import type { script } from '@gef/protos';

type UploadMessage = script.CreateScriptRequest | script.UpdateScriptRequest;

/**
 * Splits a client-streamed upload into its header (the first message) and its bytes (the
 * chunks that follow, pulled as they are consumed).
 */
export async function readUploadStream(
  requests: AsyncIterable<UploadMessage>,
): Promise<{ header: script.UploadHeader; chunks: AsyncIterable<Uint8Array> }> {
  const iterator = requests[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done || first.value.part.case !== 'header') {
    await iterator.return?.();
    throw new InvalidArgument('The upload must start with its header', 'invalid_argument');
  }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        if (next.value.part.case !== 'chunk') throw new InvalidArgument('Only chunks may follow the upload header', 'invalid_argument');
        yield next.value.part.value;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { header: first.value.part.value, chunks: chunks() };
}
