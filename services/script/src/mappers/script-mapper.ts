import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { JsonObject } from '@bufbuild/protobuf';
import { script } from '@gef/protos';
import type { Script, ScriptStatus } from '../entities/script';

const statusToProto: Record<ScriptStatus, script.ScriptStatus> = {
  PENDING: script.ScriptStatus.PENDING,
  BUILDING: script.ScriptStatus.BUILDING,
  SUCCESS: script.ScriptStatus.SUCCESS,
  FAIL: script.ScriptStatus.FAIL,
};

/** A script entity as the Script message. */
export function toScriptMessage(s: Script): script.Script {
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
  });
}
