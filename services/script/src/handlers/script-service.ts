import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import type { MikroORM } from '@mikro-orm/postgresql';
import { InvalidArgument, NotFound } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { script } from '@gef/protos';
import { toScriptMessage } from '../mappers/script-mapper';
import { ScriptRepository } from '../repositories/script-repository';

export interface ScriptServiceDeps {
  orm: MikroORM;
}

/** gef.script.v1.ScriptService. */
export function scriptService(deps: ScriptServiceDeps): Partial<ServiceImpl<typeof script.ScriptService>> {
  return {
    async getScript(req) {
      const key = req.idOrSlug.trim();
      if (!key) throw new InvalidArgument('id_or_slug is required');
      const found = await unitOfWork(deps.orm, (em) => new ScriptRepository(em).findByIdOrSlug(key));
      if (!found) throw new NotFound('Script not found', 'not_found');
      return create(script.GetScriptResponseSchema, { script: toScriptMessage(found) });
    },

    async listScripts(req) {
      const page = Math.max(1, req.page || 1);
      const perPage = Math.min(100, Math.max(1, req.perPage || 20));
      const { items, total } = await unitOfWork(deps.orm, (em) => new ScriptRepository(em).page(page, perPage));
      return create(script.ListScriptsResponseSchema, {
        scripts: items.map(toScriptMessage),
        page,
        perPage,
        total: BigInt(total),
      });
    },
  };
}
