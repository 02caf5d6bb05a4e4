import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { linesStatement, shareWithin, takeWithin, withinBytes } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { LogLevel } from '../entities/execution-log';
import type { NewLogLine } from '../domain/log-lines';
import { nowSql, type Alongside } from './execution-repository';

export interface LogRecord {
  id: number;
  executionId: string;
  attempt: number;
  seq: number | null;
  level: LogLevel;
  text: string;
  registerDate: Date;
}

type Row = Record<string, unknown>;

const toLog = (r: Row): LogRecord => ({
  id: Number(r['id']),
  executionId: r['execution_id'] as string,
  attempt: Number(r['attempt']),
  seq: r['seq'] === null || r['seq'] === undefined ? null : Number(r['seq']),
  level: r['level'] as LogLevel,
  text: r['text'] as string,
  registerDate: new Date(r['register_date'] as Date),
});

const columns = 'id, execution_id, attempt, seq, level, text, register_date';

/**
 * A batch in one statement with one parameter for all its lines (a JSON array), in order.
 * `skipStored`: a line stored already (same execution, attempt and seq) is skipped; without
 * it the statement inserts every line, which costs a third less (no speculative insertion
 * per line) and fails on the unique constraint when a line is stored already.
 *
 * Each batch is dated strictly after the log's last line (at least a millisecond later, even
 * when the clock has not moved on), so a client polling with `start=<the last date it read>`
 * (strictly after) does not skip a batch written in the millisecond of the one it read.
 * Callers of `append` hold the execution's row lock, so that last line is the last committed.
 * `appendAlongside` takes the lock in its own statement (its condition `when` waits for it),
 * whose snapshot is older than a line another transaction committed while it waited (a
 * cancel's line just as the runner's last lines come). Both read the last line through
 * execution_log_after_last (a snapshot of its own), once, after the lock. Params: the
 * execution (twice), the attempt, the lines.
 */
const insertSql = (skipStored: boolean, when?: string) => `insert into execution_log (execution_id, attempt, seq, level, text, register_date)
  select ?, ?, t.seq, t.level, t.text,
    greatest(${nowSql}, (select execution_log_after_last(?::uuid)))
  from rows from (jsonb_to_recordset(?::jsonb) as (seq integer, level varchar, text text)) with ordinality as t(seq, level, text, n)${when ? `\n  where ${when}` : ''}
  order by t.n${skipStored ? '\n  on conflict on constraint execution_log_seq_unique do nothing' : ''}`;

/**
 * Batches of more lines than this try the insert without ON CONFLICT first (see insert):
 * below it, the two round trips of a savepoint cost more than the speculative insertion.
 */
export const savepointFrom = 32;

const linesJson = (lines: NewLogLine[]) => JSON.stringify(lines.map((l) => ({ seq: l.seq, level: l.level, text: l.text })));

/** The params of insertSql, in its order. */
const insertParams = (executionId: string, attempt: number, lines: NewLogLine[]) => [executionId, attempt, executionId, linesJson(lines)];

export interface ListOptions {
  after?: Date;
  afterId?: number;
  /** Only lines registered at this instant. */
  at?: Date;
  limit: number;
}

export interface PageOptions extends ListOptions {
  /** The most bytes of line text the page holds, as JSON strings take it (`jsonTextBytes` of @gef/common); at least one line. */
  maxBytes: number;
}

/** Lines of a page, and whether it stopped on bytes (more lines may follow than its count says). */
export interface LogPage {
  lines: LogRecord[];
  full: boolean;
}

/** The statement of ExecutionLogRepository.list. */
export function listStatement(executionId: string, options: ListOptions): { sql: string; params: unknown[] } {
  return linesStatement({ name: 'execution_log', owner: 'execution_id', columns }, executionId, options);
}

/** Log lines of executions. */
export class ExecutionLogRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * `append` as a statement to run beside another (a CTE of the same statement), its lines
   * inserted only when the SQL condition `when` holds (e.g. that a sibling CTE changed a
   * row); a line stored already is skipped. For small batches (see savepointFrom).
   */
  static appendAlongside(executionId: string, attempt: number, lines: NewLogLine[], when?: string): Alongside {
    return { sql: insertSql(true, when), params: insertParams(executionId, attempt, lines) };
  }

  /**
   * Appends lines in order. A line whose (execution, attempt, seq) is stored already is
   * skipped, so a redelivered batch adds nothing. Callers hold the execution's row lock, so
   * one execution's line ids grow in commit order (a reader resuming after an id misses
   * nothing). Returns the lines stored now.
   */
  async append(executionId: string, attempt: number, lines: NewLogLine[]): Promise<LogRecord[]> {
    if (lines.length === 0) return [];
    const rows = await this.insert<Row[]>((sql) => `${sql} returning ${columns}`, insertParams(executionId, attempt, lines), lines.length);
    return rows.map(toLog).sort((a, b) => a.id - b.id);
  }

  /** As `append`, for batches whose stored lines nobody reads back: how many were stored. */
  async appendCounted(executionId: string, attempt: number, lines: NewLogLine[]): Promise<number> {
    if (lines.length === 0) return 0;
    const rows = await this.insert<{ n: string }[]>(
      (sql) => `with stored as (${sql} returning 1) select count(*) as n from stored`,
      insertParams(executionId, attempt, lines),
      lines.length,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Runs the insert (`statement` wraps it). A small batch (a runner's last lines, a service
   * line) skips stored lines with ON CONFLICT in one statement. A large one goes in without
   * ON CONFLICT first (a third cheaper, and most batches hold no line stored already); one
   * that does (a batch delivered again) fails on the unique constraint, is undone to a
   * savepoint and goes in again skipping the stored lines. Callers run in a transaction
   * (they hold the execution's row lock).
   */
  private async insert<T extends Row[]>(statement: (insert: string) => string, params: unknown[], lines: number): Promise<T> {
    if (lines <= savepointFrom) return this.em.execute<T>(statement(insertSql(true)), params);
    await this.em.execute('savepoint gef_log_append');
    try {
      // Released with the transaction: one round trip fewer than releasing it here.
      return await this.em.execute<T>(statement(insertSql(false)), params);
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException)) throw err;
      await this.em.execute('rollback to savepoint gef_log_append');
      return this.em.execute<T>(statement(insertSql(true)), params);
    }
  }

  /** Lines oldest first, strictly after an instant and/or an id. */
  async list(executionId: string, options: ListOptions): Promise<LogRecord[]> {
    const { sql, params } = listStatement(executionId, options);
    return (await this.em.execute<Row[]>(sql, params)).map(toLog);
  }

  /**
   * As `list`, stopping early once the lines' text reaches `maxBytes` (as JSON strings take
   * it), with at least one line: `full` says the page stopped on bytes.
   */
  async page(executionId: string, options: PageOptions): Promise<LogPage> {
    const { sql, params } = listStatement(executionId, options);
    const rows = await this.em.execute<Row[]>(`${withinBytes(sql)} order by w.id`, [...params, options.maxBytes]);
    const { lines, full } = takeWithin(rows, options.maxBytes, toLog);
    return { lines, full };
  }

  /**
   * The first lines of several executions, oldest first, grouped by execution: up to
   * `limitEach` lines and `bytesEach` bytes of text (as JSON strings take it) each, and
   * `maxBytes` in all. An execution whose first line is larger than its share still gets
   * that line while the answer stays within `maxBytes`; after that, its lines are left out.
   */
  async forExecutions(ids: string[], limitEach: number, bytesEach: number, maxBytes: number): Promise<Map<string, LogRecord[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.em.execute<Row[]>(
      `select l.* from unnest(array[?]::uuid[]) as x(id)
       cross join lateral (${withinBytes(`select ${columns} from execution_log where execution_id = x.id order by id asc limit ?`)}) l
       order by l.id`,
      [ids, limitEach, bytesEach],
    );
    return shareWithin(ids, rows, 'execution_id', { bytesEach, maxBytes }, toLog);
  }

  /**
   * Deletes up to `limit` log lines of the executions (any of them, in no order, none another
   * deleter holds); resolves to how many.
   */
  async deleteSomeOf(executionIds: string[], limit: number): Promise<number> {
    if (executionIds.length === 0) return 0;
    const rows = await this.em.execute<{ n: number }[]>(
      `with gone as (
         delete from execution_log l
          using (select execution_id, id from execution_log where execution_id = any(array[?]::uuid[]) limit ? for update skip locked) d
          where l.execution_id = d.execution_id and l.id = d.id
          returning 1)
       select count(*)::int as n from gone`,
      [executionIds, limit],
    );
    return rows[0]?.n ?? 0;
  }
}
