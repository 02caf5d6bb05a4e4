import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import type { MikroORM } from '@mikro-orm/postgresql';
import { NotFound } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { execution } from '@gef/protos';
import { toExecutionMessage } from '../mappers/execution-mapper';
import { ExecutionRepository } from '../repositories/execution-repository';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ExecutionServiceDeps {
  orm: MikroORM;
}

/** gef.execution.v1.ExecutionService. */
export function executionService(deps: ExecutionServiceDeps): Partial<ServiceImpl<typeof execution.ExecutionService>> {
  return {
    async getExecution(req) {
      // An id that is not a UUID names nothing: 404, never a database error.
      if (!uuidPattern.test(req.id)) throw new NotFound('Execution not found', 'not_found');
      const found = await unitOfWork(deps.orm, (em) => new ExecutionRepository(em).findById(req.id.toLowerCase()));
      if (!found) throw new NotFound('Execution not found', 'not_found');
      return create(execution.GetExecutionResponseSchema, { execution: toExecutionMessage(found) });
    },

    async listExecutions(req) {
      const page = Math.max(1, req.page || 1);
      const perPage = Math.min(100, Math.max(1, req.perPage || 20));
      if (req.userId && !uuidPattern.test(req.userId)) {
        return create(execution.ListExecutionsResponseSchema, { executions: [], page, perPage, total: 0n });
      }
      const { items, total } = await unitOfWork(deps.orm, (em) =>
        new ExecutionRepository(em).page(page, perPage, req.userId || undefined),
      );
      return create(execution.ListExecutionsResponseSchema, {
        executions: items.map(toExecutionMessage),
        page,
        perPage,
        total: BigInt(total),
      });
    },
  };
}
