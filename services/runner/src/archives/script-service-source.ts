import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import { script, user } from '@gef/protos';
import type { ArchiveSource } from './archive-cache';

/** The script (or the version) a run was made of is gone: deleted after the run was accepted. No runner can run it. */
export class ArchiveGone extends Error {
  override readonly name = 'ArchiveGone';
}

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
    try {
      for await (const message of stream) {
        if (message.chunk.length > 0) yield message.chunk;
      }
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) throw new ArchiveGone('The script was deleted before this run could start');
      throw err;
    }
  };
}
