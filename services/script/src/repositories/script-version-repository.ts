import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@gef/common/orm';
import { ScriptVersionSchema, type ScriptVersion } from '../entities/script-version';

/** Script versions: one per upload. */
export class ScriptVersionRepository {
  constructor(private readonly em: EntityManager) {}

  find(scriptId: string, number: number): Promise<ScriptVersion | null> {
    return this.em.findOne(ScriptVersionSchema, { scriptId, number });
  }

  lock(scriptId: string, number: number): Promise<ScriptVersion | null> {
    return this.em.findOne(ScriptVersionSchema, { scriptId, number }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
  }

  create(input: Omit<ScriptVersion, 'createdAt' | 'builtAt' | 'environmentHash' | 'status'>): ScriptVersion {
    return this.em.create(ScriptVersionSchema, { ...input, status: 'PENDING', environmentHash: null, builtAt: null, createdAt: new Date() });
  }

  /** The highest version number of a script (0 when none). Call with the script row locked. */
  async latestNumber(scriptId: string): Promise<number> {
    const rows = await this.em.execute<{ n: number | null }[]>('select max(number) as n from script_version where script_id = ?', [scriptId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** The archive digests the scripts' versions use. */
  async digestsOf(scriptIds: string[]): Promise<string[]> {
    if (scriptIds.length === 0) return [];
    const rows = await this.em.execute<{ digest: string }[]>(
      `select distinct digest from script_version where script_id in (${scriptIds.map(() => '?').join(', ')})`,
      scriptIds,
    );
    return rows.map((r) => r.digest.trim());
  }

  async isDigestUsed(digest: string): Promise<boolean> {
    const rows = await this.em.execute<{ used: boolean }[]>('select exists (select 1 from script_version where digest = ?) as used', [digest]);
    return rows[0]?.used === true;
  }
}
