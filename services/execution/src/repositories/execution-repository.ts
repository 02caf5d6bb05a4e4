import { compactJsonText } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { ExecutionStatus } from '../entities/execution';
import { terminalSql } from '../domain/statuses';
import { ownerAcceptsSql } from './deleted-user-repository';

/**
 * An execution as the service reads it. Params and results are their JSON text as the
 * database gives it (never parsed here), undefined when not loaded; `resultsJson` is null
 * when there are none.
 */
export interface ExecutionRecord {
  id: string;
  scriptId: string;
  userId: string;
  status: ExecutionStatus;
  progress: number;
  paramsJson?: string;
  resultsJson?: string | null;
  startDate: Date;
  endDate: Date | null;
  updatedAt: Date;
  scriptVersion: number;
  queuedAt: Date | null;
  attempt: number;
  slotHeld: boolean;
  /** The attempt a runner executes now (its last lines may still come); null when none does. */
  runnerAttempt: number | null;
}

export interface Columns {
  params?: boolean;
  /** `terminal`: the results of an execution that has ended (null before). */
  results?: boolean | 'terminal';
}

/** The channel every change of an execution (state or log) is announced on. */
export const executionChannel = 'gef_execution';
/** The channel announcing the owners of executions created, changed or deleted (payload: the user id; see migration 8). */
export const executionOwnerChannel = 'gef_execution_owner';

const baseColumns = 'e.id, e.script_id, e.user_id, e.status, e.progress, e.start_date, e.end_date, e.updated_at, e.script_version, e.queued_at, e.attempt, e.slot_held, e.runner_attempt';

export function selectColumns(columns: Columns = { params: true, results: true }): string {
  const results =
    columns.results === 'terminal' ? `case when e.status in (${terminalSql}) then e.results::text end as results` : columns.results ? 'e.results::text as results' : null;
  return [baseColumns, columns.params ? 'e.params::text as params' : null, results].filter(Boolean).join(', ');
}

type Row = Record<string, unknown>;

export function toRecord(r: Row): ExecutionRecord {
  const record: ExecutionRecord = {
    id: r['id'] as string,
    scriptId: r['script_id'] as string,
    userId: r['user_id'] as string,
    status: r['status'] as ExecutionStatus,
    progress: Number(r['progress']),
    startDate: new Date(r['start_date'] as Date),
    endDate: r['end_date'] ? new Date(r['end_date'] as Date) : null,
    updatedAt: new Date(r['updated_at'] as Date),
    scriptVersion: Number(r['script_version']),
    queuedAt: r['queued_at'] ? new Date(r['queued_at'] as Date) : null,
    attempt: Number(r['attempt']),
    slotHeld: Boolean(r['slot_held']),
    runnerAttempt: r['runner_attempt'] === null || r['runner_attempt'] === undefined ? null : Number(r['runner_attempt']),
  };
  // The database's text of jsonb spaces every comma and colon: written compact, as clients
  // had it.
  if ('params' in r) {
    const params = r['params'] as string | null;
    record.paramsJson = params === null || params === 'null' ? '{}' : compactJsonText(params);
  }
  if ('results' in r) {
    const results = r['results'] as string | null;
    record.resultsJson = results === null ? null : compactJsonText(results);
  }
  return record;
}

/** The current instant as the database stores it (milliseconds, the precision clients get). */
export const nowSql = "date_trunc('milliseconds', clock_timestamp())";

export interface ListWhere {
  where: string;
  params: unknown[];
  orderBy: string;
  limit: number;
  offset: number;
  columns: Columns;
  /**
   * Set when only the owner narrows the list (or nothing does): the total then comes from
   * the per-user counts (`null`: every user's), not from counting rows.
   */
  countedByOwner?: { userId: string | null };
  /**
   * The most bytes of params and results (as JSON text) the rows may hold together: the
   * rows past it are left out (`cut`), the first row always kept. Unset: no bound.
   */
  maxBytes?: number;
}

/**
 * The JSON size of the params and results a row of `selectColumns` holds (SQL over its
 * output, `e.params` and `e.results` being their text already).
 */
function jsonBytesSql(columns: Columns): string | undefined {
  const parts = [columns.params ? 'coalesce(octet_length(e.params), 0)' : null, columns.results ? 'coalesce(octet_length(e.results), 0)' : null].filter(Boolean);
  return parts.length > 0 ? parts.join(' + ') : undefined;
}

/** A data-modifying statement (`?` params) to run in the same statement as another, as a CTE. */
export interface Alongside {
  sql: string;
  params: unknown[];
}

/** Executions in the service's own database. Queries are plain SQL on the given manager. */
export class ExecutionRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Inserts a PENDING execution; `alongside` statements run in the same statement (one
   * round trip, atomic without a transaction). Foreign keys are checked at its end, so
   * they may insert rows that refer to the new execution. The statement fails, inserting
   * nothing, when the owner has been deleted (`DeletedUserRepository.refused`); it holds
   * the owner's lock shared until the transaction ends.
   */
  async insert(
    e: { id: string; scriptId: string; userId: string; params: Record<string, unknown>; scriptVersion: number; slotHeld?: boolean },
    alongside: Alongside[] = [],
  ): Promise<ExecutionRecord> {
    const ctes = alongside.length > 0 ? `with ${alongside.map((a, i) => `alongside_${i} as (${a.sql})`).join(', ')} ` : '';
    const rows = await this.em.execute<Row[]>(
      `${ctes}insert into execution as e (id, script_id, user_id, status, progress, params, start_date, updated_at, script_version, attempt, slot_held)
       select ?::uuid, ?::uuid, ?::uuid, 'PENDING', 0, ?::jsonb, ${nowSql}, ${nowSql}, ?::integer, 0, ?::boolean where ${ownerAcceptsSql}
       returning ${selectColumns()}`,
      [...alongside.flatMap((a) => a.params), e.id, e.scriptId, e.userId, JSON.stringify(e.params), e.scriptVersion, e.slotHeld ?? false, e.userId],
    );
    return toRecord(rows[0]!);
  }

  async findById(id: string, columns?: Columns): Promise<ExecutionRecord | null> {
    const rows = await this.em.execute<Row[]>(`select ${selectColumns(columns)} from execution e where e.id = ?`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The row, locked until the transaction ends (serialises state changes and log appends). */
  async lock(id: string, columns: Columns = {}): Promise<ExecutionRecord | null> {
    const rows = await this.em.execute<Row[]>(`select ${selectColumns(columns)} from execution e where e.id = ? for update`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * Sets columns (SQL assignments with `?` params) and returns the row. `notify`: the change
   * is announced in the same statement (as `notify` does, one round trip fewer).
   */
  async set(id: string, assignments: string[], params: unknown[], columns: Columns = { params: true, results: true }, options: { notify?: boolean } = {}): Promise<ExecutionRecord> {
    const announce = options.notify ? `, pg_notify('${executionChannel}', e.id::text) as notified` : '';
    const rows = await this.em.execute<Row[]>(
      `update execution e set ${[...assignments, `updated_at = ${nowSql}`].join(', ')} where e.id = ? returning ${selectColumns(columns)}${announce}`,
      [...params, id],
    );
    return toRecord(rows[0]!);
  }

  /**
   * A runner's take of attempt `attempt`, in one statement (atomic without a transaction):
   * the row is locked and, unless the run has ended, is being cancelled, is RUNNING this
   * attempt already or has a later one (or its version's spec is missing), set RUNNING with
   * the attempt and announced;
   * `alongside(changed)` runs in the same statement, given an SQL condition that holds when
   * the row was changed. Returns the row as it was (with params), whether it was changed,
   * and the spec of its pinned version.
   */
  async startAttempt(
    id: string,
    attempt: number,
    alongside: (changed: string) => Alongside,
  ): Promise<{ current: ExecutionRecord; changed: ExecutionRecord | undefined; spec: Row | null } | null> {
    const side = alongside('exists (select 1 from started)');
    const rows = await this.em.execute<Row[]>(
      `with cur as (
         select ${selectColumns({ params: true })}, to_jsonb(s) as spec
           from execution e left join script_run_spec s on s.script_id = e.script_id and s.version = e.script_version
          where e.id = ? for update of e),
       started as (
         update execution e set status = 'RUNNING', attempt = ?, runner_attempt = ?, updated_at = ${nowSql}
           from cur
          where e.id = cur.id and cur.status not in (${terminalSql}, 'CANCELLING') and cur.attempt <= ?
            and not (cur.status = 'RUNNING' and cur.attempt = ?) and cur.spec is not null
          returning ${selectColumns({ params: true })}, pg_notify('${executionChannel}', e.id::text) as notified),
       alongside as (${side.sql})
       select to_jsonb(cur) as cur, to_jsonb(started) as started from cur left join started on true`,
      [id, attempt, attempt, attempt, attempt, ...side.params],
    );
    const r = rows[0];
    if (!r) return null;
    const current = r['cur'] as Row;
    const started = r['started'] as Row | null;
    return { current: toRecord(current), changed: started ? toRecord(started) : undefined, spec: (current['spec'] as Row | null) ?? null };
  }

  /**
   * A runner's outcome when it simply applies, in one statement: with the row locked,
   * `alongside(current)` (the attempt's last lines) runs when the attempt is still the
   * run's (`current` is that SQL condition); the status and `assignments` are set when, in
   * addition, the run has not ended and is not being cancelled (and the outcome is not
   * CANCELLED). Returns the row's status and attempt before, and the status set, if any.
   */
  async completeAttempt(
    id: string,
    attempt: number,
    status: ExecutionStatus,
    assignments: string[],
    params: unknown[],
    alongside: (current: string) => Alongside,
  ): Promise<{ status: ExecutionStatus; attempt: number; applied: ExecutionStatus | undefined } | null> {
    const side = alongside('exists (select 1 from cur where cur.attempt = ' + String(Math.trunc(attempt)) + ')');
    const rows = await this.em.execute<Row[]>(
      `with cur as (select e.id, e.status, e.attempt from execution e where e.id = ? for update),
       alongside as (${side.sql}),
       done as (
         update execution e set ${['status = ?', ...assignments, `updated_at = ${nowSql}`].join(', ')}
           from cur
          where e.id = cur.id and cur.attempt = ? and cur.status not in (${terminalSql}, 'CANCELLING') and ?::text <> 'CANCELLED'
          returning e.status, pg_notify('${executionChannel}', e.id::text) as notified)
       select cur.status, cur.attempt, done.status as applied from cur left join done on true`,
      [id, ...side.params, status, ...params, attempt, status],
    );
    const r = rows[0];
    if (!r) return null;
    return { status: r['status'] as ExecutionStatus, attempt: Number(r['attempt']), applied: (r['applied'] as ExecutionStatus | null) ?? undefined };
  }

  /** The runner of `attempt` is done with the run (its last lines are stored). */
  async releaseRunner(id: string, attempt: number): Promise<void> {
    await this.em.execute('update execution set runner_attempt = null where id = ? and runner_attempt = ?', [id, attempt]);
  }

  /** Announces a change to every watcher (delivered at commit). */
  async notify(id: string): Promise<void> {
    await this.em.execute(`select pg_notify('${executionChannel}', ?)`, [id]);
  }

  /**
   * The newest `perScript` executions (start_date desc) of each script, among those `where`
   * admits, in one statement (an index scan per script): scripts' embedded runs.
   */
  async latestOfScripts(q: { where: string; params: unknown[]; scriptIds: string[]; perScript: number; columns: Columns }): Promise<ExecutionRecord[]> {
    if (q.scriptIds.length === 0) return [];
    const rows = await this.em.execute<Row[]>(
      `select x.* from unnest(array[?]::uuid[]) with ordinality as s(id, n)
       cross join lateral (
         select ${selectColumns(q.columns)} from execution e
          where e.script_id = s.id and (${q.where})
          order by e.start_date desc, e.id desc limit ?) x
       order by s.n, x.start_date desc, x.id desc`,
      [q.scriptIds, ...q.params, q.perScript],
    );
    return rows.map(toRecord);
  }

  async page(q: ListWhere): Promise<{ items: ExecutionRecord[]; total: number; cut: boolean }> {
    const [page, count] = await Promise.all([
      this.rowsOf(q),
      q.countedByOwner
        ? this.em.execute<{ n: string }[]>(
            q.countedByOwner.userId === null
              ? 'select coalesce(sum(n), 0) as n from execution_user_count'
              : 'select coalesce(sum(n), 0) as n from execution_user_count where user_id = ?',
            q.countedByOwner.userId === null ? [] : [q.countedByOwner.userId],
          )
        : this.em.execute<{ n: string }[]>(`select count(*) as n from execution e where ${q.where}`, q.params),
    ]);
    return { items: page.rows.map(toRecord), total: Number(count[0]?.n ?? 0), cut: page.cut };
  }

  /**
   * A page's rows. With `maxBytes` (and params or results read), the rows whose params and
   * results fit, the first always: one statement, which renders each row's JSON as text
   * once, and sends none past the bound (a page of large rows never sits in this process's
   * memory whole).
   */
  private async rowsOf(q: ListWhere): Promise<{ rows: Row[]; cut: boolean }> {
    const { maxBytes } = q;
    const bytes = maxBytes === undefined ? undefined : jsonBytesSql(q.columns);
    const page = `select ${selectColumns(q.columns)} from execution e where ${q.where} order by ${q.orderBy} limit ? offset ?`;
    if (maxBytes === undefined || bytes === undefined) {
      return { rows: await this.em.execute<Row[]>(page, [...q.params, q.limit, q.offset]), cut: false };
    }
    // `orderBy` names columns of the page's rows (`e.<column>`, ending with `e.id`): the
    // outer queries call the page `e` too.
    const rows = await this.em.execute<Row[]>(
      `select * from (
         select e.*, sum(${bytes}) over (order by ${q.orderBy} rows between unbounded preceding and current row) as json_running,
                row_number() over (order by ${q.orderBy}) as json_n, count(*) over () as page_rows
         from (${page}) e
       ) e where e.json_n = 1 or e.json_running <= ? order by ${q.orderBy}`,
      [...q.params, q.limit, q.offset, maxBytes],
    );
    return { rows, cut: rows.length > 0 && rows.length < Number(rows[0]!['page_rows']) };
  }

  /**
   * Runs a workflow should still be looking after, for the check of ended workflows: not
   * ended, or holding a slot; accepted over `olderThanSeconds` ago, and started (no start
   * waiting in the outbox). At most `limit`, by id after `afterId` (the check's cursor).
   */
  async runsToCheck(afterId: string, olderThanSeconds: number, limit: number): Promise<{ id: string; userId: string; slotHeld: boolean }[]> {
    // The statuses as the partial index execution_active_idx lists them (not `not in` the
    // terminal ones, which it cannot serve), or'ed with execution_slot_idx's `slot_held`.
    const rows = await this.em.execute<{ id: string; user_id: string; slot_held: boolean }[]>(
      `select e.id, e.user_id, e.slot_held from execution e
        where (e.status in ('PENDING', 'READY', 'RUNNING', 'CANCELLING') or e.slot_held)
          and e.start_date < now() - make_interval(secs => ?)
          and e.id > ?
          and not exists (select 1 from execution_dispatch d where d.execution_id = e.id)
          and not exists (select 1 from deleted_user u where u.user_id = e.user_id)
        order by e.id limit ?`,
      [olderThanSeconds, afterId, limit],
    );
    return rows.map((r) => ({ id: r.id, userId: r.user_id, slotHeld: r.slot_held }));
  }

  /** Serialises slot decisions of one user (until the transaction ends). */
  async lockUserSlots(userId: string): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`execution-slots:${userId}`]);
  }

  async countHeldSlots(userId: string): Promise<number> {
    const rows = await this.em.execute<{ n: string }[]>('select count(*) as n from execution where user_id = ? and slot_held', [userId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Runs of the user waiting for a slot that were accepted before the given one. */
  async countOlderWaiting(userId: string, startDate: Date, id: string): Promise<number> {
    const rows = await this.em.execute<{ n: string }[]>(
      `select count(*) as n from execution
       where user_id = ? and status = 'PENDING' and not slot_held and (start_date, id) < (?, ?)`,
      [userId, startDate, id],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** How many runs of the user wait for a slot, counted up to `atMost`. */
  async countWaiting(userId: string, atMost: number): Promise<number> {
    const rows = await this.em.execute<{ n: string }[]>(
      `select count(*) as n from (select 1 from execution where user_id = ? and status = 'PENDING' and not slot_held limit ?) waiting`,
      [userId, atMost],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Whether any run of the user waits for a slot (accepted, not holding one). */
  async anyWaiting(userId: string): Promise<boolean> {
    const rows = await this.em.execute<Row[]>(`select 1 from execution where user_id = ? and status = 'PENDING' and not slot_held limit 1`, [userId]);
    return rows.length > 0;
  }

  /** The oldest runs of the user waiting for a slot. */
  async oldestWaiting(userId: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const rows = await this.em.execute<{ id: string }[]>(
      `select id from execution where user_id = ? and status = 'PENDING' and not slot_held order by start_date, id limit ?`,
      [userId, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Up to `limit` executions of a user with their status, and whether a stop of theirs waits to be delivered (for deletion). */
  async idsOfUser(userId: string, limit: number): Promise<{ id: string; status: ExecutionStatus; scriptId: string; scriptVersion: number; stopPending: boolean }[]> {
    const rows = await this.em.execute<Row[]>(
      `select e.id, e.status, e.script_id, e.script_version, exists (select 1 from execution_stop_dispatch s where s.execution_id = e.id) as stop_pending
         from execution e where e.user_id = ? limit ?`,
      [userId, limit],
    );
    return rows.map((r) => ({
      id: r['id'] as string,
      status: r['status'] as ExecutionStatus,
      scriptId: r['script_id'] as string,
      scriptVersion: Number(r['script_version']),
      stopPending: r['stop_pending'] === true,
    }));
  }

  async deleteByIds(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const rows = await this.em.execute<{ id: string }[]>('delete from execution where id in (?) returning id', [ids]);
    return rows.length;
  }
}
