import type { EntityManager } from '@gef/common/orm';
import { outboxRetrySql, type OutboxStore } from '@gef/common/outbox';
import type { BuildRef } from '../domain/build-launcher';

/** The NOTIFY channel on which new outbox rows are announced (migration 3's trigger). */
export const buildDispatchChannel = 'build_dispatch';

const keyOf = (ref: BuildRef): string => `${ref.scriptId}:${ref.version}`;
function refOf(key: string): BuildRef {
  const [scriptId = '', version = '0'] = key.split(':');
  return { scriptId, version: Number(version) };
}

/** The outbox of buildScript starts (table build_dispatch). */
export class BuildDispatchRepository implements OutboxStore<BuildRef> {
  constructor(private readonly em?: EntityManager) {}

  /** Records a version's build to start, in the caller's transaction. */
  async add(ref: BuildRef): Promise<void> {
    await this.em!.execute('insert into build_dispatch (script_id, version) values (?, ?) on conflict do nothing', [ref.scriptId, ref.version]);
  }

  /** Every version still PENDING or BUILDING, again (after a crash); returns how many. */
  async addUnfinished(): Promise<number> {
    const rows = await this.em!.execute<{ script_id: string }[]>(
      `insert into build_dispatch (script_id, version)
         select script_id, number from script_version where status in ('PENDING', 'BUILDING') order by created_at
       on conflict do nothing returning script_id`,
    );
    return rows.length;
  }

  /** Due rows; a version whose build already ended needs no workflow. */
  async claim(em: EntityManager, limit: number): Promise<{ key: string; item: BuildRef | undefined }[]> {
    const rows = await em.execute<{ script_id: string; version: number; status: string }[]>(
      `select d.script_id, d.version, v.status
         from build_dispatch d join script_version v on v.script_id = d.script_id and v.number = d.version
        where d.next_at <= now()
        order by d.next_at, d.created_at
        limit ? for update of d skip locked`,
      [limit],
    );
    return rows.map((r) => {
      const ref = { scriptId: r.script_id, version: r.version };
      return { key: keyOf(ref), item: r.status === 'PENDING' || r.status === 'BUILDING' ? ref : undefined };
    });
  }

  async done(em: EntityManager, key: string): Promise<void> {
    const ref = refOf(key);
    await em.execute('delete from build_dispatch where script_id = ? and version = ?', [ref.scriptId, ref.version]);
  }

  async failed(em: EntityManager, key: string, error: string): Promise<void> {
    const ref = refOf(key);
    await em.execute(`update build_dispatch set attempts = attempts + 1, next_at = ${outboxRetrySql('attempts')}, last_error = ? where script_id = ? and version = ?`, [
      error,
      ref.scriptId,
      ref.version,
    ]);
  }

  async nextDue(em: EntityManager): Promise<Date | undefined> {
    const rows = await em.execute<{ next_at: Date | null }[]>('select min(next_at) as next_at from build_dispatch');
    return rows[0]?.next_at ? new Date(rows[0].next_at) : undefined;
  }
}
