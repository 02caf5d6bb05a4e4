import type { EntityManager } from '@gef/common/orm';
import { ScriptSchema, type Script } from '../entities/script';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Scripts in the service's own database. */
export class ScriptRepository {
  constructor(private readonly em: EntityManager) {}

  /** By id (a UUID) or slug. */
  findByIdOrSlug(key: string): Promise<Script | null> {
    return this.em.findOne(ScriptSchema, uuidPattern.test(key) ? { id: key.toLowerCase() } : { slug: key });
  }

  async page(page: number, perPage: number): Promise<{ items: Script[]; total: number }> {
    const [items, total] = await this.em.findAndCount(
      ScriptSchema,
      {},
      { orderBy: { createdAt: 'asc', id: 'asc' }, limit: perPage, offset: (page - 1) * perPage },
    );
    return { items, total };
  }

  /** Deletes a user's scripts with their versions and logs (cascade); returns how many. */
  deleteByUser(userId: string): Promise<number> {
    return this.em.nativeDelete(ScriptSchema, { userId });
  }
}
