import { toJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { timestampFromDate, ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { formatApiMillis, InvalidArgument, NotFound, parseApiDate, uuidPattern } from '@gef/common';
import { execution, type script, type user } from '@gef/protos';
import { isAtLeast, type RoleName } from '../auth/authenticator';
import { callerOf } from '../auth/caller';
import { executionCredential, type ExecutionCredential } from '../auth/execution-credential';
import type { ServiceClients } from '../clients';
import { inBatches } from '../in-batches';
import { executionsOpenApi } from '../openapi/executions';
import { listOf, positiveInt, queryOf, storableQueryText } from '../query';
import { clientKey, enforceLimits } from '../rate-limit/limits';
import { StreamSlots } from '../rate-limit/stream-slots';
import { RawJson } from '../raw-json';
import { answerSource } from '../cache/answer-cache';
import { rpcOptions } from '../request-context';
import { apiDate } from '../timestamps';
import { parseInput } from '../validation';
import { attachmentDisposition, publicUserJson, scriptJson } from './scripts';
import { executionFor, fromQgisPlugin, qgisExecution, qgisScript } from './qgis-shape';
import { allPagesKey, ownerPagesKey, type RenderedExecutionPage, type Resource, type RouteContext } from './types';

/** How often an idle event stream gets a comment, so proxies and clients keep it open. */
export const keepAliveMs = 15_000;

/** What a client should wait before reconnecting to an event stream that broke. */
const retryMs = 2_000;
/** How often an event stream checks that its token still holds (a revoked one is refused within a second). */
const tokenCheckMs = 500;
/** How long an event stream waits for a client to take what it was sent before dropping it. */
const slowClientMs = 60_000;

const statusNames: Record<execution.ExecutionStatus, string> = {
  [execution.ExecutionStatus.UNSPECIFIED]: 'PENDING',
  [execution.ExecutionStatus.PENDING]: 'PENDING',
  [execution.ExecutionStatus.READY]: 'READY',
  [execution.ExecutionStatus.RUNNING]: 'RUNNING',
  [execution.ExecutionStatus.FINISHED]: 'FINISHED',
  [execution.ExecutionStatus.FAILED]: 'FAILED',
  [execution.ExecutionStatus.CANCELLING]: 'CANCELLING',
  [execution.ExecutionStatus.CANCELLED]: 'CANCELLED',
};

export const executionStatuses = ['PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLING', 'CANCELLED'] as const;

const statusByName: Record<string, execution.ExecutionStatus> = {
  PENDING: execution.ExecutionStatus.PENDING,
  READY: execution.ExecutionStatus.READY,
  RUNNING: execution.ExecutionStatus.RUNNING,
  FINISHED: execution.ExecutionStatus.FINISHED,
  FAILED: execution.ExecutionStatus.FAILED,
  CANCELLING: execution.ExecutionStatus.CANCELLING,
  CANCELLED: execution.ExecutionStatus.CANCELLED,
};

const levelNames: Record<execution.LogLevel, string> = {
  [execution.LogLevel.UNSPECIFIED]: 'INFO',
  [execution.LogLevel.DEBUG]: 'DEBUG',
  [execution.LogLevel.INFO]: 'INFO',
  [execution.LogLevel.WARNING]: 'WARNING',
  [execution.LogLevel.ERROR]: 'ERROR',
  [execution.LogLevel.CRITICAL]: 'CRITICAL',
};

/** The levels a client may send (any case); WARN is WARNING. */
export const levelByName: Record<string, execution.LogLevel> = {
  DEBUG: execution.LogLevel.DEBUG,
  INFO: execution.LogLevel.INFO,
  WARN: execution.LogLevel.WARNING,
  WARNING: execution.LogLevel.WARNING,
  ERROR: execution.LogLevel.ERROR,
  CRITICAL: execution.LogLevel.CRITICAL,
};

/**
 * Progress as the REST API shows it: a whole number 0–100, rounded, except that nothing short
 * of 100 shows as 100 (a run at 99.6 % shows 99: a client's progress bar is full only at the end).
 */
export function progressJson(p: number): number {
  const value = Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0;
  return value < 100 ? Math.min(99, Math.round(value)) : 100;
}

/** An execution log line as the REST API shows it. */
export function executionLogJson(log: execution.ExecutionLog) {
  return {
    id: Number(log.id),
    text: log.text,
    level: levelNames[log.level] ?? 'INFO',
    register_date: apiDate(log.registerDate),
    execution_id: log.executionId,
    attempt: log.attempt,
  };
}

/** Lines of one execution (columns) as the REST API shows them. */
export function logColumnsJson(lines: execution.ExecutionLogColumns | undefined): ReturnType<typeof executionLogJson>[] {
  if (!lines) return [];
  const { ids, texts, levels, registerMs, attempts, executionId } = lines;
  const out = new Array<ReturnType<typeof executionLogJson>>(ids.length);
  for (let i = 0; i < ids.length; i++) {
    out[i] = {
      id: ids[i]!,
      text: texts[i] ?? '',
      level: levelNames[levels[i] ?? execution.LogLevel.INFO] ?? 'INFO',
      register_date: formatApiMillis(registerMs[i] ?? 0),
      execution_id: executionId,
      attempt: attempts[i] ?? 0,
    };
  }
  return out;
}

type PublicUser = ReturnType<typeof publicUserJson>;
type ScriptView = ReturnType<typeof scriptJson>;

export interface ExecutionView {
  /** ADMIN+ see the Temporal workflow id. */
  admin?: boolean;
  /** Leave these out (`exclude=params,results`; event streams never carry params). */
  excludeParams?: boolean;
  excludeResults?: boolean;
  logs?: boolean;
  scripts?: Map<string, ScriptView>;
  users?: Map<string, PublicUser | null>;
  /**
   * Params and results as stand-ins for their JSON text, for an answer written with this
   * `RawJson` (reads of one execution and lists); parsed values otherwise.
   */
  raw?: RawJson;
}

/**
 * An execution's params and results: the service sends them as JSON text (the gateway asks
 * for `json_text`), which costs each hop its bytes where a message per JSON value cost far
 * more. A service of an earlier version sends the messages: they are read as well, so reads
 * stay right while the services are upgraded or rolled back in turn.
 */
const paramsJson = (e: execution.Execution, raw?: RawJson): JsonObject | string =>
  e.paramsJson !== '' ? (raw ? raw.hold(e.paramsJson) : (JSON.parse(e.paramsJson) as JsonObject)) : (e.params ?? {});
const resultsJson = (e: execution.Execution, raw?: RawJson): JsonValue =>
  e.resultsJson !== undefined ? (raw ? raw.hold(e.resultsJson) : (JSON.parse(e.resultsJson) as JsonValue)) : e.results !== undefined ? toJson(ValueSchema, e.results) : null;

/** An execution as the REST API shows it, with the relations asked for. */
export function executionJson(e: execution.Execution | undefined, view: ExecutionView = {}) {
  if (!e) return null;
  return {
    id: e.id,
    script_id: e.scriptId,
    user_id: e.userId,
    status: statusNames[e.status] ?? 'PENDING',
    progress: progressJson(e.progress),
    ...(view.excludeParams ? {} : { params: paramsJson(e, view.raw) }),
    ...(view.excludeResults ? {} : { results: resultsJson(e, view.raw) }),
    start_date: apiDate(e.startDate),
    end_date: apiDate(e.endDate),
    updated_at: apiDate(e.updatedAt),
    script_version: e.scriptVersion,
    queued_at: apiDate(e.queuedAt),
    attempt: e.attempt,
    ...(view.admin ? { workflow_id: e.workflowId } : {}),
    ...(view.logs ? { logs: e.logs.map(executionLogJson) } : {}),
    ...(view.scripts ? { script: view.scripts.get(e.scriptId) ?? null } : {}),
    ...(view.users ? { user: view.users.get(e.userId) ?? null } : {}),
  };
}

/** The `{execution}` path parameter: any text; the service answers 404 for a non-UUID. */
function executionKey(req: Request): string {
  const raw = req.params['execution'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value || value.length > 100) throw new NotFound('Execution not found', 'not_found');
  return value;
}

/** The `{script}` path parameter: an id or a slug. */
function scriptKey(req: Request): string {
  const raw = req.params['script'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value || value.length > 200) throw new NotFound('Script not found', 'not_found');
  return value;
}

/** A date from the query (any ISO 8601 form), or undefined. */
function dateParam(query: Record<string, string>, name: string): Date | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  const date = parseApiDate(raw);
  if (!date) throw new InvalidArgument(`${name} must be an ISO 8601 date or date-time, not '${raw.slice(0, 60)}'`, 'invalid_argument');
  return date;
}

const ts = (d: Date | undefined) => (d ? { value: timestampFromDate(d) } : undefined);

const includes = ['script', 'user', 'logs'] as const;
const excludes = ['params', 'results'] as const;

/** The query names of both list routes. */
const listQuery = [
  'include',
  'exclude',
  'status',
  'script_id',
  'user_id',
  'updated_at',
  'start_date',
  'end_date',
  'start_date_from',
  'start_date_to',
  'end_date_from',
  'end_date_to',
  'filter',
  'sort',
  'page',
  'per_page',
] as const;

function viewQuery(query: Record<string, string>) {
  const include = listOf(query, 'include', includes);
  const exclude = listOf(query, 'exclude', excludes);
  return {
    script: include.includes('script'),
    user: include.includes('user'),
    logs: include.includes('logs'),
    excludeParams: exclude.includes('params'),
    excludeResults: exclude.includes('results'),
  };
}

const statusList = (raw: string | undefined): string => {
  if (raw === undefined || raw.trim() === '') return '';
  const items = raw.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const item of items) {
    if (!(executionStatuses as readonly string[]).includes(item)) {
      throw new InvalidArgument(`Unknown status '${item.slice(0, 40)}'; expected ${executionStatuses.join(', ')}`, 'invalid_argument');
    }
  }
  return items.join(',');
};

function uuidParam(query: Record<string, string>, name: string): string {
  const raw = query[name];
  if (raw === undefined || raw === '') return '';
  if (!uuidPattern.test(raw)) throw new InvalidArgument(`${name} must be a UUID`, 'invalid_argument');
  return raw.toLowerCase();
}

/**
 * The scripts and owners of some executions, as the caller may see them (null when not:
 * a deleted script, or a user the caller may not see), asked in parallel, ten at a time.
 */
async function embedsOf(
  clients: ServiceClients,
  req: Request,
  caller: user.Caller | undefined,
  executions: readonly Pick<execution.Execution, 'scriptId' | 'userId'>[],
  want: { script: boolean; user: boolean },
) {
  const scripts = want.script ? new Map<string, ScriptView>() : undefined;
  const users = want.user ? new Map<string, PublicUser | null>() : undefined;
  const jobs: (() => Promise<void>)[] = [];
  const missing = (err: unknown) => {
    const code = err instanceof ConnectError ? err.code : undefined;
    if (code === Code.NotFound || code === Code.PermissionDenied) return true;
    throw err;
  };
  if (scripts) {
    for (const id of new Set(executions.map((e) => e.scriptId))) {
      jobs.push(async () => {
        try {
          const reply = await clients.script.getScript({ idOrSlug: id, caller }, rpcOptions(req));
          scripts.set(id, scriptJson(reply.script as script.Script | undefined));
        } catch (err) {
          if (missing(err)) scripts.set(id, null);
        }
      });
    }
  }
  if (users) {
    for (const id of new Set(executions.map((e) => e.userId))) {
      jobs.push(async () => {
        try {
          const reply = await clients.user.getUser({ idOrEmail: id, caller }, rpcOptions(req));
          users.set(id, reply.user ? publicUserJson(reply.user) : null);
        } catch (err) {
          if (missing(err)) users.set(id, null);
        }
      });
    }
  }
  await inBatches(jobs, 10, (job) => job());
  return { ...(scripts ? { scripts } : {}), ...(users ? { users } : {}) };
}

/**
 * The run parameters: the query string (as strings; a name given more than once, its first
 * value) merged with the JSON object body (the body wins); the key `token` (an old client's
 * credential) is dropped from both.
 */
function runParams(req: Request): JsonObject {
  const params: JsonObject = {};
  for (const [key, raw] of Object.entries(req.query)) {
    // A name given more than once counts with its first value, as older servers took it.
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (typeof value !== 'string') throw new InvalidArgument(`Query parameter '${key.slice(0, 100)}' must be text`, 'invalid_argument');
    storableQueryText(key, value);
    params[key] = value;
  }
  const body: unknown = req.body;
  if (body !== undefined) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgument('Request body must be a JSON object', 'invalid_argument');
    Object.assign(params, body as JsonObject);
  }
  delete params['token'];
  return params;
}

const updateBody = z
  .object({
    status: z
      .string()
      .max(20)
      .transform((s) => s.trim().toUpperCase())
      .refine((s) => s in statusByName, `status must be one of ${executionStatuses.join(', ')}`)
      .optional(),
    progress: z.number().min(0).max(100).optional(),
    // Any JSON value, null included: presence is what counts.
    results: z.unknown().optional(),
  })
  .refine((b) => b.status !== undefined || b.progress !== undefined || 'results' in b, {
    message: 'Give at least one of status, progress, results',
  });

const logBody = z.object({
  text: z.string().max(1_000_000),
  level: z
    .string()
    .max(20)
    .transform((s) => s.trim().toUpperCase())
    .refine((s) => s in levelByName, 'level must be one of DEBUG, INFO, WARN, WARNING, ERROR, CRITICAL'),
});

/** The log route's `start` and `last-id`. */
function logQuery(query: Record<string, string>) {
  const out: { start?: Date; lastId?: bigint } = {};
  const start = dateParam(query, 'start');
  if (start) out.start = start;
  const lastId = query['last-id'];
  if (lastId !== undefined && lastId !== '') {
    if (!/^\d{1,18}$/.test(lastId)) throw new InvalidArgument('last-id must be a non-negative integer', 'invalid_argument');
    out.lastId = BigInt(lastId);
  }
  return out;
}

/** Who changes an execution, as the RPC takes it. */
const changedBy = (credential: ExecutionCredential) =>
  credential.kind === 'user' ? { caller: callerOf(credential.principal) } : { executionToken: credential.token };

const isAdmin = (credential: ExecutionCredential) => credential.kind === 'user' && isAtLeast(credential.principal.role, 'ADMIN');

/**
 * The cache key of a list's pages: the one owner its executions can belong to, or `all`.
 * The service narrows every list of a non-admin (and `/execution/user`) to the caller.
 */
function listOwnerKey(role: RoleName, callerId: string, ownOnly: boolean, userId: string | undefined): string {
  if (ownOnly || !isAtLeast(role, 'ADMIN')) return ownerPagesKey(callerId);
  return userId ? ownerPagesKey(userId) : allPagesKey;
}

/** A rendered page as the response body, each item with the embeds asked for (after its own keys). */
function listBody(page: RenderedExecutionPage, embeds: { scripts?: Map<string, unknown>; users?: Map<string, unknown> }): string {
  const { scripts, users } = embeds;
  const items =
    scripts || users
      ? page.items.map((item, i) => {
          const ref = page.refs[i]!;
          const script = scripts ? `,"script":${JSON.stringify(scripts.get(ref.scriptId) ?? null)}` : '';
          const user = users ? `,"user":${JSON.stringify(users.get(ref.userId) ?? null)}` : '';
          return `${item.slice(0, -1)}${script}${user}}`;
        })
      : page.items;
  return `{"data":[${items.join(',')}],"page":${page.page},"per_page":${page.perPage},"total":${page.total}}`;
}

/** Resolves once the response's buffer drained, or it closed; a client silent for `slowClientMs` is dropped. */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, slowClientMs);
    res.once('drain', done);
    res.once('close', done);
  });
}

/** One Server-Sent Event; false when the client has not taken what it was sent yet. */
function sseEvent(res: Response, event: string, id: bigint, data: unknown): boolean {
  return res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** `/api/v1/execution…` and `/api/v1/script/{script}/run`: runs, their state, logs and events. */
export const executionsResource: Resource = {
  name: 'executions',
  openapi: executionsOpenApi,
  routes: ({ clients, auth, config, limiter, limits, executions, executionPages, answers, sharedSlots }: RouteContext) => {
    // Open event streams per user, over every process of this gateway.
    const streams = new StreamSlots({ user: config.EVENT_STREAMS_PER_USER, admin: config.EVENT_STREAMS_PER_ADMIN }, sharedSlots);
    // A change made through this gateway shows in its next answer at once, whichever of
    // its processes gives it (other gateways learn of it from the change stream).
    // A new execution (no `id`) is in no copy of an execution yet, only in lists.
    const changed = async (e: execution.Execution | undefined, id?: string) => {
      await Promise.all([
        id !== undefined ? executions.invalidateEverywhere(id.toLowerCase()) : undefined,
        e ? executionPages.invalidateEverywhere(ownerPagesKey(e.userId), allPagesKey) : undefined,
      ]);
    };
    const list = async (req: Request, res: Response, ownOnly: boolean) => {
      const principal = await auth.require(req);
      const query = queryOf(req, listQuery);
      const view = viewQuery(query);
      const caller = callerOf(principal);
      const startFrom = dateParam(query, 'start_date_from') ?? dateParam(query, 'start_date');
      const endTo = dateParam(query, 'end_date_to') ?? dateParam(query, 'end_date');
      const userId = uuidParam(query, 'user_id');
      const request = {
        caller,
        ownOnly,
        userId,
        status: statusList(query['status']),
        scriptId: uuidParam(query, 'script_id'),
        updatedAt: ts(dateParam(query, 'updated_at'))?.value,
        startDateFrom: ts(startFrom)?.value,
        startDateTo: ts(dateParam(query, 'start_date_to'))?.value,
        endDateFrom: ts(dateParam(query, 'end_date_from'))?.value,
        endDateTo: ts(endTo)?.value,
        filter: query['filter'] ?? '',
        sort: query['sort'] ?? '',
        page: positiveInt(query, 'page') ?? 0,
        perPage: positiveInt(query, 'per_page') ?? 0,
        includeLogs: view.logs,
        excludeParams: view.excludeParams,
        excludeResults: view.excludeResults,
        jsonText: true,
      };
      const admin = isAtLeast(principal.role, 'ADMIN');
      const qgis = fromQgisPlugin(res);
      const load = async (): Promise<RenderedExecutionPage> => {
        const reply = await clients.execution.listExecutions(request, rpcOptions(req));
        const shown = { admin, logs: view.logs, excludeParams: view.excludeParams, excludeResults: view.excludeResults };
        return {
          items: reply.executions.map((e) => {
            const raw = new RawJson();
            const json = executionJson(e, { ...shown, raw });
            return raw.stringify(qgis ? qgisExecution(json, raw) : json);
          }),
          refs: reply.executions.map((e) => ({ scriptId: e.scriptId, userId: e.userId })),
          page: reply.page,
          perPage: reply.perPage,
          total: Number(reply.total),
        };
      };
      // Lines of logs change without their execution: those pages are always read afresh.
      // Each caller's pages are kept apart, and each query's, and the QGIS plugin's shape
      // from the contract's. A query is what the service is asked (`request`, as parsed), not
      // the URL: with the URL, text the parsing drops (`exclude=,,,`) made a new variant of
      // the same page on every request.
      const asked = JSON.stringify(request, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
      const ownerKey = listOwnerKey(principal.role, principal.userId, ownOnly, userId);
      const variant = `${principal.userId} ${principal.role} ${qgis ? 'qgis ' : ''}${asked}`;
      const page = view.logs ? await load() : await executionPages.read(ownerKey, load, variant);
      const embeds = await embedsOf(clients, req, caller, page.refs, view);
      const scripts = qgis && embeds.scripts ? new Map([...embeds.scripts].map(([id, s]) => [id, qgisScript(s)])) : embeds.scripts;
      // Made from the cached page alone (scripts and users embedded are cached nowhere).
      if (!view.logs && !view.script && !view.user) answers.keep(req, res, principal, [answerSource(executionPages, ownerKey, variant, page)]);
      res.type('json').send(listBody(page, { ...embeds, ...(scripts ? { scripts } : {}) }));
    };

    return [
      {
        method: 'post',
        path: '/api/v1/script/{script}/run',
        operationId: 'runScript',
        body: 'json',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const key = scriptKey(req);
          const params = runParams(req);
          await enforceLimits(limiter, limits, [
            { name: 'run_account', key: principal.userId },
            { name: 'run_client', key: clientKey(req) },
          ]);
          const reply = await clients.execution.runScript({ caller: callerOf(principal), idOrSlug: key, paramsJson: JSON.stringify(params), jsonText: true }, rpcOptions(req));
          await changed(reply.execution);
          res.json({ data: executionFor(res, executionJson(reply.execution, { admin: isAtLeast(principal.role, 'ADMIN') })) });
        },
      },
      {
        method: 'get',
        path: '/api/v1/execution',
        operationId: 'listExecutions',
        handler: (req, res) => list(req, res, false),
      },
      {
        method: 'get',
        path: '/api/v1/execution/user',
        operationId: 'listMyExecutions',
        handler: (req, res) => list(req, res, true),
      },
      {
        method: 'get',
        path: '/api/v1/execution/{execution}',
        operationId: 'getExecution',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const view = viewQuery(queryOf(req, ['include', 'exclude']));
          const caller = callerOf(principal);
          const id = executionKey(req);
          const load = async () => {
            const reply = await clients.execution.getExecution(
              { id, caller, includeLogs: view.logs, excludeParams: view.excludeParams, excludeResults: view.excludeResults, jsonText: true },
              rpcOptions(req),
            );
            if (!reply.execution) throw new NotFound('Execution not found', 'not_found');
            return reply.execution;
          };
          // Cached under the id as changes name it; each caller's answer is kept apart (what
          // one may see says nothing of another). With its log (up to 8 MiB of lines, which
          // change without their execution) always read afresh, as lists with logs are.
          const cached = uuidPattern.test(id) && !view.logs;
          const variant = `${principal.userId} ${principal.role} ${view.excludeParams} ${view.excludeResults}`;
          const key = id.toLowerCase();
          const found = cached ? await executions.read(key, load, variant) : await load();
          const embeds = await embedsOf(clients, req, caller, [found], view);
          const raw = new RawJson();
          const data = executionFor(
            res,
            executionJson(found, {
              admin: isAtLeast(principal.role, 'ADMIN'),
              logs: view.logs,
              excludeParams: view.excludeParams,
              excludeResults: view.excludeResults,
              ...embeds,
              raw,
            }),
            raw,
          );
          // Made from the cached execution alone (scripts and users embedded are cached nowhere).
          if (cached && !view.script && !view.user) answers.keep(req, res, principal, [answerSource(executions, key, variant, found)]);
          res.type('json').send(raw.stringify({ data }));
        },
      },
      {
        method: 'patch',
        path: '/api/v1/execution/{execution}',
        operationId: 'updateExecution',
        body: 'json',
        handler: async (req, res) => {
          const credential = await executionCredential(auth, config.EXECUTION_TOKEN_SECRET, req);
          queryOf(req, []);
          const id = executionKey(req);
          const body = parseInput(updateBody, req.body);
          const reply = await clients.execution.updateExecution(
            {
              id,
              ...changedBy(credential),
              ...(body.status !== undefined ? { status: statusByName[body.status] } : {}),
              ...(body.progress !== undefined ? { progress: body.progress } : {}),
              ...('results' in body ? { resultsJson: JSON.stringify(body.results ?? null) } : {}),
              jsonText: true,
            },
            rpcOptions(req),
          );
          await changed(reply.execution, id);
          res.json({ data: executionFor(res, executionJson(reply.execution, { admin: isAdmin(credential) })) });
        },
      },
      {
        method: 'post',
        path: '/api/v1/execution/{execution}/cancel',
        operationId: 'cancelExecution',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const id = executionKey(req);
          const reply = await clients.execution.cancelExecution({ id, caller: callerOf(principal), jsonText: true }, rpcOptions(req));
          await changed(reply.execution, id);
          const d = reply.cancellationDetails;
          res.status(202).json({
            data: {
              execution: executionFor(res, executionJson(reply.execution, { admin: isAtLeast(principal.role, 'ADMIN') })),
              cancellation_details: d
                ? {
                    previous_status: statusNames[d.previousStatus] ?? 'PENDING',
                    immediate: d.immediate,
                    requested_at: apiDate(d.requestedAt),
                    requested_by: d.requestedBy,
                    message: d.message,
                  }
                : null,
            },
          });
        },
      },
      {
        method: 'get',
        path: '/api/v1/execution/{execution}/log',
        operationId: 'listExecutionLogs',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const { start, lastId } = logQuery(queryOf(req, ['start', 'last-id']));
          const reply = await clients.execution.listExecutionLogs(
            {
              id: executionKey(req),
              caller: callerOf(principal),
              ...(start ? { start: timestampFromDate(start) } : {}),
              ...(lastId !== undefined ? { lastId } : {}),
            },
            rpcOptions(req),
          );
          res.json({ data: logColumnsJson(reply.lines) });
        },
      },
      {
        method: 'post',
        path: '/api/v1/execution/{execution}/log',
        operationId: 'appendExecutionLog',
        body: 'json',
        handler: async (req, res) => {
          const credential = await executionCredential(auth, config.EXECUTION_TOKEN_SECRET, req);
          queryOf(req, []);
          const id = executionKey(req);
          const body = parseInput(logBody, req.body);
          const reply = await clients.execution.appendExecutionLogs(
            { id, ...changedBy(credential), lines: [{ text: body.text, level: levelByName[body.level] }], returnLogs: true },
            rpcOptions(req),
          );
          await executions.invalidateEverywhere(id.toLowerCase());
          const line = reply.logs[0];
          res.json({ data: line ? executionLogJson(line) : null });
        },
      },
      {
        method: 'get',
        path: '/api/v1/execution/{execution}/download-results',
        operationId: 'downloadExecutionResults',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const reply = await clients.execution.getExecution({ id: executionKey(req), caller: callerOf(principal), excludeParams: true, jsonText: true }, rpcOptions(req));
          const e = reply.execution;
          if (!e) throw new NotFound('Execution not found', 'not_found');
          const results = resultsJson(e);
          res.setHeader('Content-Disposition', attachmentDisposition(`${e.id}.json`));
          res.type('application/json').send(JSON.stringify(results));
        },
      },
      {
        method: 'get',
        path: '/api/v1/execution/{execution}/events',
        operationId: 'watchExecution',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          // `lastEventId` (and a cache-busting `_`) as event-source polyfills send them on reconnecting.
          const query = queryOf(req, ['last-id', 'lastEventId', '_']);
          const id = executionKey(req);
          const resumeAt = lastEventId(req.headers['last-event-id'], query['last-id'] ?? query['lastEventId'], query['last-id'] === undefined && query['lastEventId'] !== undefined ? 'lastEventId' : 'last-id');
          const admin = isAtLeast(principal.role, 'ADMIN');
          // Taken before the call starts; held until the stream ends, whatever ends it (the
          // run, the client leaving, an error before the first event).
          let gone = false;
          const leaving = () => {
            gone = true;
          };
          res.once('close', leaving);
          const release = await streams.take(principal.userId, admin);
          res.off('close', leaving);
          res.once('close', release);
          // The client left while the slot was being granted: nothing to stream to.
          if (gone) return release();
          const abort = new AbortController();
          res.once('close', () => abort.abort());
          const stream = clients.execution.watchExecution(
            { id, caller: callerOf(principal), ...(resumeAt !== undefined ? { afterLogId: resumeAt } : {}), jsonText: true },
            // The stream lasts as long as the run: no deadline, the client's leaving ends it.
            { ...rpcOptions(req, 0), signal: abort.signal },
          );
          const messages = stream[Symbol.asyncIterator]();
          let keepAlive: NodeJS.Timeout | undefined;
          let watchToken: NodeJS.Timeout | undefined;
          try {
            // Errors (not found, not visible) come before the first event: a normal error answer.
            let next = await messages.next();
            res.status(200);
            res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
            res.setHeader('Cache-Control', 'no-cache, no-transform');
            res.setHeader('X-Accel-Buffering', 'no');
            if (req.method === 'HEAD') {
              res.end();
              return;
            }
            res.flushHeaders();
            res.write(`retry: ${retryMs}\n\n`);
            // The stream ends when its token stops holding (logged out, revoked, expired): the
            // client comes back with a fresh one and Last-Event-ID, and misses nothing.
            const revoked = () => {
              if (auth.stillHolds(principal)) return false;
              res.end();
              return true;
            };
            // Once ended (a revoked token, between two messages), nothing more is written.
            const open = () => !res.destroyed && !res.writableEnded;
            keepAlive = setInterval(() => {
              if (open()) res.write(': keep-alive\n\n');
            }, keepAliveMs);
            watchToken = setInterval(() => {
              if (open()) revoked();
            }, tokenCheckMs);
            let last = resumeAt ?? 0n;
            while (!next.done && open() && !revoked()) {
              const message = next.value;
              last = message.lastLogId;
              const event = message.event;
              let flowing = true;
              if (event.case === 'log') flowing = sseEvent(res, 'log', last, executionLogJson(event.value));
              else if (event.case === 'progress') flowing = sseEvent(res, 'progress', last, { progress: progressJson(event.value.progress) });
              else if (event.case === 'status') {
                flowing = sseEvent(res, 'status', last, { status: statusNames[event.value.status] ?? 'PENDING', execution: executionJson(event.value.execution, { admin, excludeParams: true }) });
              }
              // A client that reads slowly holds the stream, not the gateway's memory.
              if (!flowing) await drained(res);
              next = await messages.next();
            }
            if (open()) {
              // The run is over and every line was sent.
              sseEvent(res, 'end', last, {});
              res.end();
            }
          } catch (err) {
            // The client left: the call was cancelled on purpose.
            if (abort.signal.aborted) return;
            throw err;
          } finally {
            release();
            clearInterval(keepAlive);
            clearInterval(watchToken);
            await messages.return?.().catch(() => undefined);
          }
        },
      },
    ];
  },
};

/** `Last-Event-ID` (or `last-id`): the id of the last log line the client has. */
function lastEventId(header: string | string[] | undefined, query: string | undefined, queryName: string): bigint | undefined {
  const fromHeader = (Array.isArray(header) ? header[0] : header)?.trim();
  const raw = fromHeader || query;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,18}$/.test(raw)) throw new InvalidArgument(`${fromHeader ? 'Last-Event-ID' : `Query parameter '${queryName}'`} must be a non-negative integer`, 'invalid_argument');
  return BigInt(raw);
}
