import type { EntityManager } from '@gef/common/orm';
import type { Alongside } from './execution-repository';

export interface RunSpecRecord {
  scriptId: string;
  version: number;
  scriptUserId: string;
  digest: string;
  size: number;
  runtime: string;
  environmentHash: string;
  requirements: string;
  cpuLimit: number;
  memoryLimit: number;
  /** Seconds; 0: the configured default. */
  timeout: number;
}

type Row = Record<string, unknown>;

/** A script_run_spec row (as `to_jsonb` of one) as a record. */
export function toSpec(r: Row): RunSpecRecord {
  return {
    scriptId: r['script_id'] as string,
    version: Number(r['version']),
    scriptUserId: r['script_user_id'] as string,
    digest: r['digest'] as string,
    size: Number(r['size']),
    runtime: r['runtime'] as string,
    environmentHash: r['environment_hash'] as string,
    requirements: r['requirements'] as string,
    cpuLimit: Number(r['cpu_limit']),
    memoryLimit: Number(r['memory_limit']),
    timeout: Number(r['timeout']),
  };
}

/** What running each pinned script version needs (one row per version, shared by its runs). */
export class RunSpecRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Records a version's spec; a version is immutable, so an existing row is kept, and locked
   * (`do update … where false` locks the row it leaves as it is) until the run that needs it
   * commits: a prune of unused specs waits for the run rather than delete the spec under it.
   */
  static record(spec: RunSpecRecord): Alongside {
    return {
      sql: `insert into script_run_spec (script_id, version, script_user_id, digest, size, runtime, environment_hash, requirements, cpu_limit, memory_limit, timeout)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            on conflict (script_id, version) do update set script_id = excluded.script_id where false`,
      params: [spec.scriptId, spec.version, spec.scriptUserId, spec.digest, spec.size, spec.runtime, spec.environmentHash, spec.requirements, spec.cpuLimit, spec.memoryLimit, spec.timeout],
    };
  }

  /**
   * Removes specs of these versions that no execution uses any more. Each spec is locked
   * first (in one order, so two prunes cannot deadlock): a run being accepted holds its
   * spec's lock until it commits, and the delete, a statement of its own, then sees the run.
   * (A delete that waited for the lock itself would re-check with the snapshot it started
   * with, which does not hold the run.)
   */
  async pruneUnused(versions: { scriptId: string; version: number }[]): Promise<void> {
    const ordered = [...versions].sort((a, b) => (a.scriptId < b.scriptId ? -1 : a.scriptId > b.scriptId ? 1 : a.version - b.version));
    for (const v of ordered) {
      await this.em.execute('select 1 from script_run_spec where script_id = ? and version = ? for update', [v.scriptId, v.version]);
      await this.em.execute(
        `delete from script_run_spec s where s.script_id = ? and s.version = ?
         and not exists (select 1 from execution e where e.script_id = s.script_id and e.script_version = s.version)`,
        [v.scriptId, v.version],
      );
    }
  }
}
