import type { EntityManager } from '@gef/common/orm';
import { ExecutionSchema, type Execution } from '../entities/execution';

/** Executions in the service's own database. */
export class ExecutionRepository {
  constructor(private readonly em: EntityManager) {}

  findById(id: string): Promise<Execution | null> {
    return this.em.findOne(ExecutionSchema, { id });
  }

  /** Newest first; optionally one user's. */
  async page(page: number, perPage: number, userId?: string): Promise<{ items: Execution[]; total: number }> {
    const [items, total] = await this.em.findAndCount(ExecutionSchema, userId ? { userId } : {}, {
      orderBy: { startDate: 'desc', id: 'desc' },
      limit: perPage,
      offset: (page - 1) * perPage,
    });
    return { items, total };
  }

  /** Deletes the executions a user made, with their logs (cascade); returns how many. */
  deleteByUser(userId: string): Promise<number> {
    return this.em.nativeDelete(ExecutionSchema, { userId });
  }
}
