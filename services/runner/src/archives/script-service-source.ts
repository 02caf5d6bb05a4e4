import { create } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { script, user } from '@gef/protos';
import type { ArchiveSource } from './archive-cache';

/**
 * Archives from the script service's DownloadScript: the pinned version, downloaded as the
 * script's owner (who may always read it), so a run never depends on who started it or on
 * the script's visibility since.
 */
export function scriptServiceSource(client: Client<typeof script.ScriptService>): ArchiveSource {
  return async function* download(ref) {
    const stream = client.downloadScript(
      create(script.DownloadScriptRequestSchema, {
        idOrSlug: ref.scriptId,
        version: ref.version,
        caller: create(user.CallerSchema, { userId: ref.scriptUserId, role: user.Role.USER }),
      }),
      { timeoutMs: 10 * 60_000 },
    );
    for await (const message of stream) {
      if (message.chunk.length > 0) yield message.chunk;
    }
  };
}
