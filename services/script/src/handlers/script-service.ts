import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { script } from '@gef/protos';
import { addScriptVersion, createScript } from '../domain/script-uploads';
import { deleteScript, setScriptPublic, updateScriptMetadata } from '../domain/script-changes';
import { getScript, getScriptForRun, listScriptLogs, listScripts, openDownload } from '../domain/script-reads';
import { appendBuildLog, buildRequirements } from '../domain/script-builds';
import type { ScriptDeps } from '../domain/deps';
import { actorFromCaller } from '../mappers/caller-mapper';
import { toScriptArchiveMessage, toScriptForRunMessage, toScriptLogMessage, toScriptMessage } from '../mappers/script-mapper';
import { timestampToIso } from '../mappers/timestamp-mapper';
import { readUploadStream } from './upload-stream';

export type ScriptServiceDeps = ScriptDeps;

/** gef.script.v1.ScriptService: maps messages to the script domain and back. */
export function scriptService(deps: ScriptServiceDeps): ServiceImpl<typeof script.ScriptService> {
  return {
    async createScript(requests) {
      const { header, chunks } = await readUploadStream(requests);
      const created = await createScript(deps, actorFromCaller(header.caller), { fileName: header.fileName, chunks });
      return create(script.CreateScriptResponseSchema, { script: toScriptMessage(created) });
    },

    async updateScript(requests) {
      const { header, chunks } = await readUploadStream(requests);
      const updated = await addScriptVersion(deps, actorFromCaller(header.caller), header.idOrSlug, { fileName: header.fileName, chunks });
      return create(script.UpdateScriptResponseSchema, { script: toScriptMessage(updated) });
    },

    async updateScriptMetadata(req) {
      const updated = await updateScriptMetadata(deps, actorFromCaller(req.caller), req.idOrSlug, {
        ...(req.name !== undefined ? { name: req.name } : {}),
        ...(req.description !== undefined ? { description: req.description } : {}),
      });
      return create(script.UpdateScriptMetadataResponseSchema, { script: toScriptMessage(updated) });
    },

    async getScript(req) {
      const view = await getScript(deps, actorFromCaller(req.caller), req.idOrSlug, req.includeLogs);
      return create(script.GetScriptResponseSchema, { script: toScriptMessage(view) });
    },

    async listScripts(req) {
      const res = await listScripts(deps, actorFromCaller(req.caller), {
        filter: req.filter,
        sort: req.sort,
        page: req.page,
        perPage: req.perPage,
        includeLogs: req.includeLogs,
        userId: req.userId,
      });
      return create(script.ListScriptsResponseSchema, {
        scripts: res.scripts.map(toScriptMessage),
        page: res.page,
        perPage: res.perPage,
        total: BigInt(res.total),
      });
    },

    async deleteScript(req) {
      const deleted = await deleteScript(deps, actorFromCaller(req.caller), req.idOrSlug);
      return create(script.DeleteScriptResponseSchema, { script: toScriptMessage(deleted) });
    },

    async setScriptPublic(req) {
      const changed = await setScriptPublic(deps, actorFromCaller(req.caller), req.idOrSlug, req.public);
      return create(script.SetScriptPublicResponseSchema, { script: toScriptMessage(changed) });
    },

    async *downloadScript(req) {
      const { script: found, version, stream } = await openDownload(deps, actorFromCaller(req.caller), req.idOrSlug, req.version);
      let first = true;
      try {
        for await (const chunk of stream) {
          yield create(script.DownloadScriptResponseSchema, {
            ...(first ? { archive: toScriptArchiveMessage(found, version) } : {}),
            chunk: chunk as Buffer,
          });
          first = false;
        }
        if (first) yield create(script.DownloadScriptResponseSchema, { archive: toScriptArchiveMessage(found, version) });
      } finally {
        stream.destroy();
      }
    },

    async listScriptLogs(req) {
      const logs = await listScriptLogs(deps, actorFromCaller(req.caller), req.idOrSlug, {
        ...(req.start ? { after: timestampToIso(req.start) } : {}),
        ...(req.lastId !== undefined ? { afterId: Number(req.lastId) } : {}),
        limit: req.limit,
      });
      return create(script.ListScriptLogsResponseSchema, { logs: logs.map(toScriptLogMessage) });
    },

    async getScriptForRun(req) {
      const { script: found, version } = await getScriptForRun(deps, actorFromCaller(req.caller), req.idOrSlug);
      return create(script.GetScriptForRunResponseSchema, { run: toScriptForRunMessage(found, version) });
    },

    async appendBuildLog(req) {
      const numbering = req.firstSeq > 0 ? { attempt: req.attempt, firstSeq: req.firstSeq, ...(req.buildRun ? { buildRun: req.buildRun } : {}) } : undefined;
      const appended = await appendBuildLog(deps, { scriptId: req.scriptId, version: req.version }, req.buildToken, req.lines, numbering);
      return create(script.AppendBuildLogResponseSchema, { appended });
    },

    async getBuildRequirements(req) {
      const requirements = await buildRequirements(deps, { scriptId: req.scriptId, version: req.version }, req.buildToken);
      return create(script.GetBuildRequirementsResponseSchema, { requirements });
    },
  };
}
