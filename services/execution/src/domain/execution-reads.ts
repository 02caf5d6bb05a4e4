import { endOnWholeInstant, filterToSql, pageOfLines, InvalidArgument, parseFilter, parsePaging, parseSort, shareOf, sortToSql, unpaginatedLimit, type FieldMap } from '@gef/common';
import { executionStatuses, type ExecutionStatus } from '../entities/execution';
import { ExecutionLogRepository, type LogRecord } from '../repositories/execution-log-repository';
import { ExecutionRepository, type Columns, type ExecutionRecord } from '../repositories/execution-repository';
import { assertMayRead, executionIdOf, executionNotFound, isAdmin, isUuid, requireActor, type Actor } from './actor';
import type { ExecutionDeps } from './deps';

/** Fields of `filter` and `sort` on executions. */
export const executionListFields: FieldMap = {
  id: { column: 'e.id', type: 'uuid' },
  script_id: { column: 'e.script_id', type: 'uuid' },
  user_id: { column: 'e.user_id', type: 'uuid' },
  status: { column: 'e.status', type: 'enum', values: executionStatuses },
  progress: { column: 'e.progress', type: 'number' },
  start_date: { column: 'e.start_date', type: 'date' },
  end_date: { column: 'e.end_date', type: 'date' },
  updated_at: { column: 'e.updated_at', type: 'date' },
  script_version: { column: 'e.script_version', type: 'number' },
  queued_at: { column: 'e.queued_at', type: 'date' },
  attempt: { column: 'e.attempt', type: 'number' },
};

/**
 * The most params and results (JSON bytes) one list answer holds: a list of a thousand
 * runs, or a page of a hundred, with large results would otherwise sit whole in this
 * process and the gateway. A list asked without pagination stops before it (`total` says
 * there is more); a page past it is refused, naming the ways to ask for less.
 */
export const listBytesLimit = 32 * 1024 * 1024;

/**
 * The most line text one answer holds (a page of ListExecutionLogs, an execution's or a
 * list's embedded lines), counted as JSON strings take it (a control character may take 6
 * bytes): lines may be 32 KiB, and a page of 5,000 of them was 160 MB in this process, the
 * gateway's and the client's. A page stops early there, with at least one line; the client
 * continues from its last line as from any page. Pages of short lines stop on their count.
 */
export const logBytesPerAnswer = 8 * 1024 * 1024;

/** Embedded log lines per execution (a log may be longer: read it with ListExecutionLogs). */
export const maxEmbeddedLines = 1000;
/**
 * Embedded log lines in one list answer, shared between its executions: a page of 100 gets
 * 1,000 each, a list of 1,000 (asked without pagination) 100 each. The answer's
 * `logBytesPerAnswer` is shared the same way (84 KB each in a page of 100); an execution
 * whose first line is larger than its share gets that line while the answer has room.
 */
export const maxEmbeddedLinesPerList = 100_000;
/**
 * Lines per ListExecutionLogs page that continues from a line (`start` or `last-id`). A client
 * following a long run reads it in pages of this many: with 1,000 a reader of a run writing
 * 20,000 lines a second fell behind by per-page costs (a request, a query, a response each)
 * and finished reading a second after the run.
 */
const maxLogLines = 5000;
/** Lines of a log read from its start: a list asked without a cursor answers at most 1,000 rows. */
const maxFirstLogLines = 1000;

export interface ExecutionView {
  execution: ExecutionRecord;
  logs?: LogRecord[];
}

export interface ReadOptions {
  includeLogs?: boolean;
  excludeParams?: boolean;
  excludeResults?: boolean;
}

const columnsOf = (o: ReadOptions): Columns => ({ params: !o.excludeParams, results: !o.excludeResults });

/** GET /execution/<id>: the owner or ADMIN+, else NotFound. */
export async function getExecution(deps: ExecutionDeps, caller: Actor | undefined, rawId: string, options: ReadOptions = {}): Promise<ExecutionView> {
  const actor = requireActor(caller);
  const id = executionIdOf(rawId);
  const em = deps.orm.em.fork();
  const execution = await new ExecutionRepository(em).findById(id, columnsOf(options));
  if (!execution) throw executionNotFound();
  assertMayRead(actor, execution);
  if (!options.includeLogs) return { execution };
  const { lines: logs } = await new ExecutionLogRepository(em).page(id, { limit: maxEmbeddedLines, maxBytes: logBytesPerAnswer });
  return { execution, logs };
}

export interface ExecutionListQuery extends ReadOptions {
  page?: number;
  perPage?: number;
  userId?: string;
  ownOnly?: boolean;
  status?: string;
  scriptId?: string;
  scriptIds?: string[];
  /** With `scriptIds`: the newest so many runs of each script (at most 100), instead of a page. */
  perScript?: number;
  updatedAt?: Date;
  startDateFrom?: Date;
  startDateTo?: Date;
  endDateFrom?: Date;
  endDateTo?: Date;
  filter?: string;
  sort?: string;
}

function uuidParam(name: string, value: string): string {
  if (!isUuid(value.trim())) throw new InvalidArgument(`${name} must be a UUID`, 'invalid_argument');
  return value.trim().toLowerCase();
}

/** The statuses of a comma list (any case). */
export function parseStatuses(text: string): ExecutionStatus[] {
  return text
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s) => s.length > 0)
    .map((s) => {
      const status = executionStatuses.find((x) => x === s);
      if (!status) throw new InvalidArgument(`Invalid status '${s.slice(0, 40)}': expected one of ${executionStatuses.join(', ')}`, 'invalid_filter');
      return status;
    });
}

/**
 * The WHERE clause of a list (with `?` params) for the actor, and, when nothing but the
 * owner narrows it, that owner (`null`: everyone), whose total the per-user counts know.
 */
export function listWhere(actor: Actor, q: ExecutionListQuery): { where: string; params: unknown[]; countedByOwner?: { userId: string | null } } {
  const filter = filterToSql(parseFilter(q.filter, executionListFields), executionListFields);
  const where: string[] = [`(${filter.sql})`];
  const params: unknown[] = [...filter.params];
  const owners = new Set<string>();
  let narrowed = filter.sql !== 'true';
  const add = (sql: string, ...values: unknown[]) => {
    where.push(sql);
    params.push(...values);
    narrowed = true;
  };
  const owner = (userId: string) => {
    where.push('e.user_id = ?');
    params.push(userId);
    owners.add(userId);
  };
  if (q.ownOnly || !isAdmin(actor)) owner(actor.userId);
  if (q.userId) {
    const userId = uuidParam('user_id', q.userId);
    // The caller's own list takes user_id from older clients and lists the caller's own whatever it names.
    if (!q.ownOnly) owner(userId);
  }
  if (q.status) {
    const statuses = parseStatuses(q.status);
    if (statuses.length > 0) add(`e.status in (${statuses.map(() => '?').join(', ')})`, ...statuses);
  }
  if (q.scriptId) add('e.script_id = ?', uuidParam('script_id', q.scriptId));
  if (q.scriptIds && q.scriptIds.length > 0) {
    const ids = q.scriptIds.map((s) => uuidParam('script_ids', s));
    add(`e.script_id in (${ids.map(() => '?').join(', ')})`, ...ids);
  }
  if (q.updatedAt) add('e.updated_at >= ?', q.updatedAt);
  if (q.startDateFrom) add('e.start_date >= ?', q.startDateFrom);
  if (q.startDateTo) add('e.start_date <= ?', q.startDateTo);
  if (q.endDateFrom) add('e.end_date >= ?', q.endDateFrom);
  if (q.endDateTo) add('e.end_date <= ?', q.endDateTo);
  const result = { where: where.join(' and '), params };
  // Two different owners match nothing: left to the count.
  if (narrowed || owners.size > 1) return result;
  return { ...result, countedByOwner: { userId: owners.size === 1 ? [...owners][0]! : null } };
}

/** Runs embedded per script at most (`perScript`). */
export const maxPerScript = 100;

/** GET /execution and /execution/user: own (ADMIN+: all), filtered, sorted, paginated. */
export async function listExecutions(deps: ExecutionDeps, caller: Actor | undefined, q: ExecutionListQuery) {
  const actor = requireActor(caller);
  if (q.perScript) return latestOfScripts(deps, actor, q);
  const { where, params, countedByOwner } = listWhere(actor, q);
  const sort = parseSort(q.sort, executionListFields);
  const paging = parsePaging(q.page, q.perPage);
  const em = deps.orm.em.fork();
  const { items, total, cut } = await new ExecutionRepository(em).page({
    where,
    params,
    orderBy: sortToSql(sort, executionListFields, 'e.start_date desc', 'e.id desc'),
    limit: paging.perPage,
    offset: paging.offset,
    columns: columnsOf(q),
    maxBytes: listBytesLimit,
    ...(countedByOwner ? { countedByOwner } : {}),
  });
  if (cut && paging.paginated) {
    throw new InvalidArgument(
      `This page's params and results exceed ${listBytesLimit / 1024 / 1024} MiB: ask for fewer per page (per_page), or leave them out (exclude=params,results)`,
      'page_too_large',
    );
  }
  const linesEach = shareOf(maxEmbeddedLinesPerList, items.length, maxEmbeddedLines);
  const bytesEach = shareOf(logBytesPerAnswer, items.length);
  const logs = q.includeLogs ? await new ExecutionLogRepository(em).forExecutions(items.map((e) => e.id), linesEach, bytesEach, logBytesPerAnswer) : undefined;
  const views: ExecutionView[] = items.map((execution) => (logs ? { execution, logs: logs.get(execution.id) ?? [] } : { execution }));
  return { executions: views, page: paging.page, perPage: paging.perPage, total };
}

/**
 * The newest runs of each of some scripts that the actor may see, in one statement: the
 * executions a script list embeds (`include=executions`), without logs.
 */
async function latestOfScripts(deps: ExecutionDeps, actor: Actor, q: ExecutionListQuery) {
  const scriptIds = [...new Set((q.scriptIds ?? []).map((s) => uuidParam('script_ids', s)))];
  if (scriptIds.length === 0) throw new InvalidArgument('per_script needs script_ids', 'invalid_argument');
  if (scriptIds.length > unpaginatedLimit) throw new InvalidArgument(`At most ${unpaginatedLimit} script_ids`, 'invalid_argument');
  const perScript = Math.min(maxPerScript, Math.floor(q.perScript ?? 0));
  const { where, params } = listWhere(actor, { ...q, scriptIds: [] });
  const items = await new ExecutionRepository(deps.orm.em.fork()).latestOfScripts({ where, params, scriptIds, perScript, columns: columnsOf(q) });
  return { executions: items.map((execution): ExecutionView => ({ execution })), page: 1, perPage: perScript, total: items.length };
}

/** GET /execution/<id>/log: oldest first, strictly after `after` and/or `afterId`. */
export async function listExecutionLogs(
  deps: ExecutionDeps,
  caller: Actor | undefined,
  rawId: string,
  options: { after?: Date; afterId?: number; limit?: number },
): Promise<LogRecord[]> {
  const actor = requireActor(caller);
  const id = executionIdOf(rawId);
  const cap = options.after || options.afterId !== undefined ? maxLogLines : maxFirstLogLines;
  const limit = Math.min(cap, options.limit && options.limit > 0 ? options.limit : cap);
  const em = deps.orm.em.fork();
  const execution = await new ExecutionRepository(em).findById(id, { params: false, results: false });
  if (!execution) throw executionNotFound();
  assertMayRead(actor, execution);
  const logs = new ExecutionLogRepository(em);
  // One line more than the page holds: a log of exactly `limit` lines is whole, not cut.
  const read = await logs.page(id, {
    ...(options.after ? { after: options.after } : {}),
    ...(options.afterId !== undefined ? { afterId: options.afterId } : {}),
    limit: limit + 1,
    maxBytes: logBytesPerAnswer,
  });
  const { lines, more } = pageOfLines(read.lines, limit, read.full);
  // A page that more lines follow (or that stopped on bytes) ends where its last instant
  // ends, or takes the rest of that instant when it is all one (a runner's batch at most).
  return endOnWholeInstant(lines, more, (last) => logs.list(id, { afterId: last.id, at: last.registerDate, limit: maxLogLines }));
}
