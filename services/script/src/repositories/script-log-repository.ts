import { cutText, linesStatement, shareWithin, takeWithin, withinBytes } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import { ScriptLogSchema, type ScriptLog } from '../entities/script-log';

/** The longest build log line kept. */
const maxLineLength = 10_000;

/**
 * How a runner numbers a batch of build lines: its build's workflow run (absent from
 * runners before it), its attempt in that run, and the batch's first line's number.
 */
export interface BuildLineNumbering {
  attempt: number;
  firstSeq: number;
  buildRun?: string;
}

/** The run of numbered lines that carry none (the unique index's `coalesce`, migration 20261201000003). */
const noRun = '00000000-0000-0000-0000-000000000000';

/** Build log lines. */
export class ScriptLogRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Appends lines in order, each with its own id (the insert order). Dates are kept to the
   * millisecond, the precision clients get back, so `start=<a line's date>` is exact, and each
   * batch is dated strictly after the log's last line (a millisecond later when the clock has
   * not moved on), so the CLI polling with `start=<the last date it read>` never skips a
   * batch written in that millisecond. Callers hold the script's row lock, so that last line
   * is the last committed. Numbered lines (`numbering`: the build's run, the runner's attempt,
   * and the first line's number) already stored are skipped: a batch sent again is stored once. Resolves
   * to the lines stored.
   */
  async append(scriptId: string, version: number | null, lines: string[], numbering?: BuildLineNumbering): Promise<number> {
    if (lines.length === 0) return 0;
    const texts = lines.map((l) => (l.length > maxLineLength ? `${cutText(l, maxLineLength)}…` : l));
    const rows = await this.em.execute<{ id: string }[]>(
      `insert into script_log (script_id, version, text, register_date, attempt, seq, build_run)
       select ?, ?, t.text,
         greatest(date_trunc('milliseconds', clock_timestamp()),
                  (select l.register_date + interval '1 millisecond' from script_log l where l.script_id = ? order by l.id desc limit 1)),
         ?::integer, ?::integer + t.n - 1, ?::uuid
       from unnest(array[?]::text[]) with ordinality as t(text, n) order by t.n
       on conflict (script_id, version, (coalesce(build_run, '${noRun}'::uuid)), attempt, seq) where seq is not null do nothing
       returning id`,
      [scriptId, version, scriptId, numbering?.attempt ?? null, numbering?.firstSeq ?? null, numbering?.buildRun ?? null, texts],
    );
    return rows.length;
  }

  /** Lines of a script, oldest first, strictly after a date (ISO 8601 text) and/or an id, or at one instant. */
  async list(scriptId: string, options: ListOptions): Promise<ScriptLog[]> {
    const { sql, params } = listStatement(scriptId, options);
    return (await this.em.execute<Record<string, unknown>[]>(sql, params)).map(this.toLog);
  }

  /**
   * As `list`, stopping early once the lines' text reaches `maxBytes` (as JSON strings take
   * it), with at least one line: `full` says the page stopped on bytes.
   */
  async page(scriptId: string, options: ListOptions & { maxBytes: number }): Promise<{ lines: ScriptLog[]; full: boolean }> {
    const { sql, params } = listStatement(scriptId, options);
    const rows = await this.em.execute<Record<string, unknown>[]>(`${withinBytes(sql)} order by w.id`, [...params, options.maxBytes]);
    const { lines, full } = takeWithin(rows, options.maxBytes, this.toLog);
    return { lines, full };
  }

  /**
   * The first lines of several scripts, oldest first, grouped by script: up to `limitEach`
   * lines and `bytesEach` bytes of text each, and `maxBytes` in all (see `shareWithin`).
   */
  async forScripts(scriptIds: string[], budget: { limitEach: number; bytesEach: number; maxBytes: number }): Promise<Map<string, ScriptLog[]>> {
    if (scriptIds.length === 0) return new Map();
    const rows = await this.em.execute<Record<string, unknown>[]>(
      `select l.* from unnest(array[?]::uuid[]) as x(id)
       cross join lateral (${withinBytes('select * from script_log where script_id = x.id order by id asc limit ?')}) l
       order by l.id`,
      [scriptIds, budget.limitEach, budget.bytesEach],
    );
    return shareWithin(scriptIds, rows, 'script_id', budget, this.toLog);
  }

  /**
   * Deletes up to `limit` build log lines of the scripts (any of them, in no order, none
   * another deleter holds); resolves to how many.
   */
  async deleteSomeOf(scriptIds: string[], limit: number): Promise<number> {
    if (scriptIds.length === 0) return 0;
    const rows = await this.em.execute<{ n: number }[]>(
      `with gone as (
         delete from script_log where id in (select id from script_log where script_id = any(array[?]::uuid[]) limit ? for update skip locked)
         returning 1)
       select count(*)::int as n from gone`,
      [scriptIds, limit],
    );
    return rows[0]?.n ?? 0;
  }

  private readonly toLog = (row: Record<string, unknown>): ScriptLog => this.em.map(ScriptLogSchema, row);
}

export interface ListOptions {
  /** ISO 8601 text. */
  after?: string;
  afterId?: number;
  /** Only lines registered at this instant. */
  at?: Date;
  limit: number;
}

function listStatement(scriptId: string, options: ListOptions): { sql: string; params: unknown[] } {
  return linesStatement({ name: 'script_log', owner: 'script_id', columns: '*' }, scriptId, options);
}
