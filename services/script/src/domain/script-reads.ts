import type { Readable } from 'node:stream';
import { endOnWholeInstant, filterToSql, pageOfLines, InvalidArgument, NotFound, parseFilter, parsePaging, parseSort, shareOf, sortToSql, type FieldMap, uuidPattern } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { scriptStatuses, type Script } from '../entities/script';
import type { ScriptLog } from '../entities/script-log';
import type { ScriptVersion } from '../entities/script-version';
import { ScriptLogRepository } from '../repositories/script-log-repository';
import { ScriptRepository } from '../repositories/script-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import type { ScriptDeps } from './deps';
import { canSee, isAdmin, requireActor, type Actor } from './policy';
import type { ScriptView } from './script-view';

/** Fields of `filter` and `sort` on scripts. */
export const scriptListFields: FieldMap = {
  id: { column: 's.id', type: 'uuid' },
  name: { column: 's.name', type: 'string' },
  slug: { column: 's.slug', type: 'string' },
  description: { column: 's.description', type: 'string', sortable: false },
  status: { column: 's.status', type: 'enum', values: scriptStatuses },
  public: { column: 's.public', type: 'boolean' },
  user_id: { column: 's.user_id', type: 'uuid' },
  version: { column: 's.version', type: 'number' },
  runtime: { column: 's.runtime', type: 'string' },
  created_at: { column: 's.created_at', type: 'date' },
  updated_at: { column: 's.updated_at', type: 'date' },
};

const maxLogLines = 1000;
/**
 * The most build log text one answer holds (a page of the log, a script's embedded lines, a
 * list's), as JSON strings take it: lines may be 10,000 characters, and a build may write
 * 20,000 lines, so a whole log could be hundreds of megabytes here, in the gateway and in
 * the client. A page stops early there, with at least one line; the client continues from
 * its last line as from any page.
 */
export const logBytesPerAnswer = 8 * 1024 * 1024;

/** The id or slug of a request, trimmed; NotFound when blank (no script has a blank slug). */
function scriptKey(idOrSlug: string): string {
  const key = idOrSlug.trim();
  if (!key) throw new NotFound('Script not found', 'not_found');
  return key;
}

/** The script if the actor may see it, else NotFound (whether or not it exists). */
function visible<T extends Script>(actor: Actor, script: T | null | undefined): T {
  if (!script || !canSee(actor, script)) throw new NotFound('Script not found', 'not_found');
  return script;
}

/** A script the actor may see, else NotFound (whether or not it exists). */
export async function findVisible(repo: ScriptRepository, actor: Actor, idOrSlug: string): Promise<Script> {
  return visible(actor, await repo.findByIdOrSlug(scriptKey(idOrSlug)));
}

export async function getScript(deps: ScriptDeps, caller: Actor | undefined, idOrSlug: string, includeLogs: boolean): Promise<ScriptView> {
  const actor = requireActor(caller);
  return unitOfWork(deps.orm, async (em) => {
    const script = await findVisible(new ScriptRepository(em), actor, idOrSlug);
    if (!includeLogs) return { script };
    return { script, logs: await pageOfLog(new ScriptLogRepository(em), script.id, {}, maxLogLines) };
  });
}

export interface ScriptListQuery {
  filter?: string;
  sort?: string;
  page?: number;
  perPage?: number;
  includeLogs?: boolean;
  userId?: string;
}

/**
 * Build log lines embedded in one list answer (`include=logs`), shared between its
 * scripts: 1,000 each in a page of 100, 100 each in a list of 1,000. `logBytesPerAnswer` is
 * shared the same way. One script's first lines are `GET /script/<s>` with `include=logs`;
 * the whole log is its log route, page by page.
 */
export const maxEmbeddedLinesPerList = 100_000;

/** GET /script: own + public (ADMIN+: all), filtered, sorted, paginated. */
export async function listScripts(deps: ScriptDeps, caller: Actor | undefined, query: ScriptListQuery) {
  const actor = requireActor(caller);
  const filter = filterToSql(parseFilter(query.filter, scriptListFields), scriptListFields);
  const sort = parseSort(query.sort, scriptListFields);
  const paging = parsePaging(query.page, query.perPage);
  const where: string[] = [`(${filter.sql})`];
  const params: unknown[] = [...filter.params];
  if (!isAdmin(actor)) {
    where.push('(s.user_id = ? or s.public)');
    params.push(actor.userId);
  }
  if (query.userId) {
    if (!uuidPattern.test(query.userId)) throw new InvalidArgument('user_id must be a UUID', 'invalid_argument');
    where.push('s.user_id = ?');
    params.push(query.userId.toLowerCase());
  }
  return unitOfWork(deps.orm, async (em) => {
    const { items, total } = await new ScriptRepository(em).page({
      where: where.join(' and '),
      params,
      orderBy: sortToSql(sort, scriptListFields, 's.created_at asc', 's.id asc'),
      limit: paging.perPage,
      offset: paging.offset,
    });
    const budget = { limitEach: shareOf(maxEmbeddedLinesPerList, items.length), bytesEach: shareOf(logBytesPerAnswer, items.length), maxBytes: logBytesPerAnswer };
    const logs = query.includeLogs ? await new ScriptLogRepository(em).forScripts(items.map((s) => s.id), budget) : undefined;
    const views: ScriptView[] = items.map((script) => (logs ? { script, logs: logs.get(script.id) ?? [] } : { script }));
    return { scripts: views, page: paging.page, perPage: paging.perPage, total };
  });
}

/** GET /script/<s>/log: oldest first, strictly after `after` (ISO text) and/or `afterId`. */
export async function listScriptLogs(
  deps: ScriptDeps,
  caller: Actor | undefined,
  idOrSlug: string,
  options: { after?: string; afterId?: number; limit?: number },
): Promise<ScriptLog[]> {
  const actor = requireActor(caller);
  const limit = Math.min(maxLogLines, options.limit && options.limit > 0 ? options.limit : maxLogLines);
  return unitOfWork(deps.orm, async (em) => {
    const script = await findVisible(new ScriptRepository(em), actor, idOrSlug);
    return pageOfLog(new ScriptLogRepository(em), script.id, { after: options.after, afterId: options.afterId }, limit);
  });
}

/**
 * A page of a script's build log, oldest first: at most `limit` lines and
 * `logBytesPerAnswer` of text, ending on a whole instant so that a client continuing with
 * `start=<the last line's date>` skips nothing; a page that is all one instant takes the
 * rest of it (one runner batch: at most 1,000 lines, which may pass the byte budget).
 */
async function pageOfLog(logs: ScriptLogRepository, scriptId: string, from: { after?: string; afterId?: number }, limit: number): Promise<ScriptLog[]> {
  // One line more than the page holds: a log of exactly `limit` lines is whole, not cut.
  const read = await logs.page(scriptId, { ...from, limit: limit + 1, maxBytes: logBytesPerAnswer });
  const { lines, more } = pageOfLines(read.lines, limit, read.full);
  return endOnWholeInstant(lines, more, (last) => logs.list(scriptId, { afterId: Number(last.id), at: last.registerDate, limit: maxLogLines }));
}

/** A visible script's version (0: the current one). */
async function findVersion(deps: ScriptDeps, actor: Actor, idOrSlug: string, number: number): Promise<{ script: Script; version: ScriptVersion }> {
  return unitOfWork(deps.orm, async (em) => {
    const script = await findVisible(new ScriptRepository(em), actor, idOrSlug);
    const version = await new ScriptVersionRepository(em).find(script.id, number || script.version);
    if (!version) throw new NotFound(`Script version ${number || script.version} not found`, 'not_found');
    return { script, version };
  });
}

/** GET /script/<s>/download: the version's bytes exactly as uploaded. */
export async function openDownload(
  deps: ScriptDeps,
  caller: Actor | undefined,
  idOrSlug: string,
  number = 0,
): Promise<{ script: Script; version: ScriptVersion; stream: Readable }> {
  const { script, version } = await findVersion(deps, requireActor(caller), idOrSlug, number);
  return { script, version, stream: await deps.store.get(version.digest.trim()) };
}

/** What running the current version needs: one statement, nothing to flush (every run starts here). */
export async function getScriptForRun(deps: ScriptDeps, caller: Actor | undefined, idOrSlug: string): Promise<{ script: Script; version: ScriptVersion }> {
  const actor = requireActor(caller);
  const found = await new ScriptRepository(deps.orm.em.fork()).findWithCurrentVersion(scriptKey(idOrSlug));
  const script = visible(actor, found?.script);
  if (!found?.version) throw new NotFound(`Script version ${script.version} not found`, 'not_found');
  return { script, version: found.version };
}
