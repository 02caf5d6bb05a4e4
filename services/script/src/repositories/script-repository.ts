import { LockMode } from '@mikro-orm/core';
import { uuidPattern } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import { ScriptSchema, type Script } from '../entities/script';
import { ScriptVersionSchema, type ScriptVersion } from '../entities/script-version';

/** The columns of `script_version` read with a script (prefixed `v_`), but its key. */
const versionColumns = ['digest', 'size', 'configuration', 'file_name', 'requirements', 'status', 'environment_hash', 'created_at', 'built_at'];
const versionSelect = versionColumns.map((c) => `v.${c} as v_${c}`).join(', ');

export interface ScriptPageQuery {
  /** A SQL boolean over `script s` with `?` placeholders. */
  where: string;
  params: unknown[];
  orderBy: string;
  limit: number;
  offset: number;
}

/** Scripts in the service's own database. */
export class ScriptRepository {
  constructor(private readonly em: EntityManager) {}

  private keyOf(key: string): { id: string } | { slug: string } {
    return uuidPattern.test(key) ? { id: key.toLowerCase() } : { slug: key };
  }

  /** By id (a UUID) or slug. */
  findByIdOrSlug(key: string): Promise<Script | null> {
    return this.em.findOne(ScriptSchema, this.keyOf(key));
  }

  /**
   * By id or slug, with its current version (null when that row is missing), in one
   * statement: what starting a run reads.
   */
  async findWithCurrentVersion(key: string): Promise<{ script: Script; version: ScriptVersion | null } | null> {
    const where = this.keyOf(key);
    const rows = await this.em.execute<Record<string, unknown>[]>(
      `select s.*, v.number as v_number, ${versionSelect}
       from script s left join script_version v on v.script_id = s.id and v.number = s.version
       where ${'id' in where ? 's.id = ?' : 's.slug = ?'}`,
      ['id' in where ? where.id : where.slug],
    );
    const row = rows[0];
    if (!row) return null;
    const scriptRow: Record<string, unknown> = {};
    const versionRow: Record<string, unknown> = { script_id: row['id'], number: row['v_number'] };
    for (const [column, value] of Object.entries(row)) {
      if (column.startsWith('v_')) versionRow[column.slice(2)] = value;
      else scriptRow[column] = value;
    }
    return { script: this.em.map(ScriptSchema, scriptRow), version: row['v_number'] === null ? null : this.em.map(ScriptVersionSchema, versionRow) };
  }

  /** By id or slug, the row locked until the transaction ends. */
  lockByIdOrSlug(key: string): Promise<Script | null> {
    return this.em.findOne(ScriptSchema, this.keyOf(key), { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
  }

  async slugTaken(slug: string): Promise<boolean> {
    return (await this.em.count(ScriptSchema, { slug })) > 0;
  }

  create(input: Omit<Script, 'createdAt' | 'updatedAt'>): Script {
    const now = new Date();
    return this.em.create(ScriptSchema, { ...input, createdAt: now, updatedAt: now });
  }

  async page(query: ScriptPageQuery): Promise<{ items: Script[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.em.execute<Record<string, unknown>[]>(
        `select s.* from script s where ${query.where} order by ${query.orderBy} limit ? offset ?`,
        [...query.params, query.limit, query.offset],
      ),
      this.em.execute<{ n: string }[]>(`select count(*) as n from script s where ${query.where}`, query.params),
    ]);
    return { items: rows.map((r) => this.em.map(ScriptSchema, r)), total: Number(counted[0]?.n ?? 0) };
  }

  /** Ids of a user's scripts. */
  async idsOfUser(userId: string): Promise<string[]> {
    const rows = await this.em.find(ScriptSchema, { userId }, { fields: ['id'] });
    return rows.map((r) => r.id);
  }

  /** Ids of a user's scripts, their rows locked until the transaction ends (a change under way is waited for). */
  async lockIdsOfUser(userId: string): Promise<string[]> {
    const rows = await this.em.execute<{ id: string }[]>('select id from script where user_id = ? order by id for update', [userId]);
    return rows.map((r) => r.id);
  }

  /** Deletes scripts (versions and logs go by cascade); returns how many. */
  deleteByIds(ids: string[]): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    return this.em.nativeDelete(ScriptSchema, { id: { $in: ids } });
  }
}
