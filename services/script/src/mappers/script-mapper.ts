import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { JsonObject } from '@bufbuild/protobuf';
import { script } from '@gef/protos';
import type { Script, ScriptStatus } from '../entities/script';
import type { ScriptLog } from '../entities/script-log';
import type { ScriptVersion } from '../entities/script-version';
import type { ScriptView } from '../domain/script-view';

const statusToProto: Record<ScriptStatus, script.ScriptStatus> = {
  PENDING: script.ScriptStatus.PENDING,
  BUILDING: script.ScriptStatus.BUILDING,
  SUCCESS: script.ScriptStatus.SUCCESS,
  FAIL: script.ScriptStatus.FAIL,
};

export const toStatusMessage = (status: ScriptStatus) => statusToProto[status];

/** A build log line as the ScriptLog message. */
export function toScriptLogMessage(log: ScriptLog): script.ScriptLog {
  return create(script.ScriptLogSchema, {
    id: BigInt(log.id),
    text: log.text,
    registerDate: timestampFromDate(log.registerDate),
    scriptId: log.scriptId,
  });
}

/** A script entity (with its logs, when loaded) as the Script message. */
export function toScriptMessage(input: Script | ScriptView): script.Script {
  const view: ScriptView = 'script' in input ? input : { script: input };
  const s = view.script;
  return create(script.ScriptSchema, {
    id: s.id,
    name: s.name,
    slug: s.slug,
    description: s.description,
    status: statusToProto[s.status],
    public: s.public,
    userId: s.userId,
    createdAt: timestampFromDate(s.createdAt),
    updatedAt: timestampFromDate(s.updatedAt),
    version: s.version,
    runtime: s.runtime,
    cpuLimit: Number(s.cpuLimit ?? 0),
    memoryLimit: BigInt(s.memoryLimit ?? 0),
    timeout: s.timeout ?? 0,
    ...(s.paramsSchema ? { paramsSchema: s.paramsSchema as JsonObject } : {}),
    logs: (view.logs ?? []).map(toScriptLogMessage),
  });
}

/** A version's archive description. */
export function toScriptArchiveMessage(s: Script, v: ScriptVersion): script.ScriptArchive {
  return create(script.ScriptArchiveSchema, {
    scriptId: s.id,
    slug: s.slug,
    version: v.number,
    fileName: v.fileName || `${s.slug}.tar.gz`,
    size: BigInt(v.size),
    digest: v.digest.trim(),
  });
}

/** What running the current version needs. */
export function toScriptForRunMessage(s: Script, v: ScriptVersion): script.ScriptForRun {
  return create(script.ScriptForRunSchema, {
    script: toScriptMessage(s),
    version: v.number,
    status: statusToProto[v.status as ScriptStatus],
    digest: v.digest.trim(),
    size: BigInt(v.size),
    runtime: s.runtime,
    environmentHash: v.environmentHash?.trim() ?? '',
    requirements: v.requirements,
    cpuLimit: Number(s.cpuLimit ?? 0),
    memoryLimit: BigInt(s.memoryLimit ?? 0),
    timeout: s.timeout ?? 0,
    ...(s.paramsSchema ? { paramsSchema: s.paramsSchema as JsonObject } : {}),
  });
}
