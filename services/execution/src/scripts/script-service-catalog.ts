import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import { InvalidArgument, NotFound, Unauthenticated, Unavailable } from '@gef/common';
import { script, user } from '@gef/protos';
import type { Actor } from '../domain/actor';
import type { ScriptCatalog, ScriptForRun } from '../domain/script-catalog';

const statusNames: Partial<Record<script.ScriptStatus, string>> = {
  [script.ScriptStatus.PENDING]: 'PENDING',
  [script.ScriptStatus.BUILDING]: 'BUILDING',
  [script.ScriptStatus.SUCCESS]: 'SUCCESS',
  [script.ScriptStatus.FAIL]: 'FAIL',
};

const roles: Record<Actor['role'], user.Role> = { USER: user.Role.USER, ADMIN: user.Role.ADMIN, SUPERADMIN: user.Role.SUPERADMIN };

/** The script service's GetScriptForRun, its errors in the platform's vocabulary. */
export class ScriptServiceCatalog implements ScriptCatalog {
  constructor(private readonly client: Client<typeof script.ScriptService>) {}

  async scriptForRun(actor: Actor, idOrSlug: string): Promise<ScriptForRun> {
    let reply: script.GetScriptForRunResponse;
    try {
      reply = await this.client.getScriptForRun(
        create(script.GetScriptForRunRequestSchema, {
          idOrSlug,
          caller: create(user.CallerSchema, { userId: actor.userId, role: roles[actor.role] }),
        }),
      );
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === Code.NotFound) throw new NotFound('Script not found', 'not_found');
      if (e.code === Code.InvalidArgument) throw new InvalidArgument(e.rawMessage, 'invalid_argument');
      if (e.code === Code.Unauthenticated) throw new Unauthenticated(e.rawMessage, 'authorization_required');
      throw new Unavailable('The script service is unavailable', 'unavailable');
    }
    const run = reply.run;
    if (!run?.script) throw new Unavailable('The script service gave no answer', 'unavailable');
    return {
      scriptId: run.script.id,
      slug: run.script.slug,
      name: run.script.name,
      scriptUserId: run.script.userId,
      version: run.version,
      status: statusNames[run.status] ?? 'UNKNOWN',
      digest: run.digest,
      size: Number(run.size),
      runtime: run.runtime || 'python3',
      environmentHash: run.environmentHash,
      requirements: run.requirements,
      cpuLimit: run.cpuLimit,
      memoryLimit: Number(run.memoryLimit),
      timeout: run.timeout,
      ...(run.paramsSchema ? { paramsSchema: run.paramsSchema as Record<string, unknown> } : {}),
    };
  }
}
