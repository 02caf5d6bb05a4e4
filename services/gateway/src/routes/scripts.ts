import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { InvalidArgument, NotFound, parseApiDate, shareOf } from '@gef/common';
import { script, user } from '@gef/protos';
import { tokenRevoked, type Principal } from '../auth/authenticator';
import { callerOf } from '../auth/caller';
import { parseJson, readBody, hasBody } from '../body';
import type { ServiceClients } from '../clients';
import { HttpError } from '../http-errors';
import { inBatches } from '../in-batches';
import { drainingOnError, isMultipart, mediaTypeOf, multipartOverheadBytes, streamFilePart } from '../multipart';
import { clientKey, enforceLimits } from '../rate-limit/limits';
import { scriptsOpenApi } from '../openapi/scripts';
import { listOf, positiveInt, queryOf } from '../query';
import { rpcOptions } from '../request-context';
import { apiDate } from '../timestamps';
import { parseInput } from '../validation';
import { executionJson } from './executions';
import { fromQgisPlugin, qgisScript, scriptFor } from './qgis-shape';
import type { Resource, RouteContext } from './types';

/** Uploads and downloads stream for as long as the client needs (the HTTP timeouts still apply). */
const streamingRpcTimeoutMs = 10 * 60_000;

const statusNames: Record<script.ScriptStatus, string> = {
  [script.ScriptStatus.UNSPECIFIED]: 'PENDING',
  [script.ScriptStatus.PENDING]: 'PENDING',
  [script.ScriptStatus.BUILDING]: 'BUILDING',
  [script.ScriptStatus.SUCCESS]: 'SUCCESS',
  [script.ScriptStatus.FAIL]: 'FAIL',
};

/** A build log line as the REST API shows it. */
export function scriptLogJson(log: script.ScriptLog) {
  return {
    id: Number(log.id),
    text: log.text,
    register_date: apiDate(log.registerDate),
    script_id: log.scriptId,
  };
}

/** A user embedded in a script: public fields only. */
export function publicUserJson(u: user.User) {
  return { id: u.id, name: u.name, country: u.country, institution: u.institution };
}

type PublicUser = ReturnType<typeof publicUserJson>;

/** An execution as `executionJson` shows it (typed loosely: the two routes embed each other). */
type EmbeddedExecution = object;

export interface ScriptEmbeds {
  logs?: boolean;
  /** The owners by id (null: not visible to the caller). */
  users?: Map<string, PublicUser | null>;
  /** The executions of each script that the caller may see, by script id. */
  executions?: Map<string, EmbeddedExecution[]>;
}

/** A script as the REST API shows it, with the relations asked for. */
export function scriptJson(s: script.Script | undefined, embeds: ScriptEmbeds = {}) {
  if (!s) return null;
  return {
    id: s.id,
    name: s.name,
    slug: s.slug,
    description: s.description,
    status: statusNames[s.status] ?? 'PENDING',
    public: s.public,
    user_id: s.userId,
    created_at: apiDate(s.createdAt),
    updated_at: apiDate(s.updatedAt),
    version: s.version,
    runtime: s.runtime,
    // Zero means the platform's configured default.
    cpu_limit: s.cpuLimit > 0 ? s.cpuLimit : null,
    memory_limit: s.memoryLimit > 0n ? Number(s.memoryLimit) : null,
    timeout: s.timeout > 0 ? s.timeout : null,
    ...(embeds.logs ? { logs: s.logs.map(scriptLogJson) } : {}),
    ...(embeds.users ? { user: embeds.users.get(s.userId) ?? null } : {}),
    ...(embeds.executions ? { executions: embeds.executions.get(s.id) ?? [] } : {}),
  };
}

const includes = ['logs', 'user', 'executions'] as const;

/** The `include` list of a request. */
function includesOf(query: Record<string, string>) {
  const list = listOf(query, 'include', includes);
  return { logs: list.includes('logs'), user: list.includes('user'), executions: list.includes('executions') };
}

/**
 * The owners of some scripts, as the caller may see them: USERs see only themselves, so
 * another owner is null for them (the user service decides).
 */
async function ownersOf(clients: ServiceClients, req: Request, caller: user.Caller | undefined, ids: readonly string[]) {
  const owners = new Map<string, PublicUser | null>();
  const unique = [...new Set(ids)];
  await inBatches(unique, 10, async (id) => {
    try {
      const reply = await clients.user.getUser({ idOrEmail: id, caller }, rpcOptions(req));
      owners.set(id, reply.user ? publicUserJson(reply.user) : null);
    } catch (err) {
      const code = err instanceof ConnectError ? err.code : undefined;
      if (code === Code.NotFound || code === Code.PermissionDenied) owners.set(id, null);
      else throw err;
    }
  });
  return owners;
}

/** Executions embedded per script: the latest ones, without params and results. */
export const embeddedExecutionsPerScript = 100;
/** Executions embedded in one answer, shared between its scripts (10 each in a list of 1,000). */
export const embeddedExecutionsPerAnswer = 10_000;

/**
 * The executions of some scripts that the caller may see (own; ADMIN+: all), newest first,
 * at most `embeddedExecutionsPerScript` per script and `embeddedExecutionsPerAnswer` in
 * all, without params and results (read those at `/execution/<id>`). One ListExecutions for
 * all the scripts (`per_script`): a list of 1,000 scripts made 1,000 calls and 2,000
 * statements.
 */
async function executionsOf(clients: ServiceClients, req: Request, caller: user.Caller | undefined, scriptIds: readonly string[]) {
  const unique = [...new Set(scriptIds)];
  const byScript = new Map<string, EmbeddedExecution[]>(unique.map((id) => [id, []]));
  if (unique.length === 0) return byScript;
  const perScript = shareOf(embeddedExecutionsPerAnswer, unique.length, embeddedExecutionsPerScript);
  const admin = caller?.role === user.Role.ADMIN || caller?.role === user.Role.SUPERADMIN;
  const reply = await clients.execution.listExecutions({ caller, scriptIds: unique, perScript, excludeParams: true, excludeResults: true, jsonText: true }, rpcOptions(req));
  const view = { admin, excludeParams: true, excludeResults: true };
  for (const e of reply.executions) byScript.get(e.scriptId)?.push(executionJson(e, view)!);
  return byScript;
}

/** The `{script}` path parameter: an id or a slug. */
function scriptKey(req: Request): string {
  const raw = req.params['script'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value || value.length > 200) throw new NotFound('Script not found', 'not_found');
  return value;
}

const metadataBody = z.object({
  name: z.string().trim().min(1).max(1000).optional(),
  description: z.string().max(100_000).nullish(),
});

/** `start` and `last-id` of the log route. */
function logQuery(query: Record<string, string>) {
  const out: { start?: Date; lastId?: bigint } = {};
  const start = query['start'];
  if (start !== undefined && start !== '') {
    const date = parseApiDate(start);
    if (!date) throw new InvalidArgument(`start must be an ISO 8601 date or date-time, not '${start.slice(0, 60)}'`, 'invalid_argument');
    out.start = date;
  }
  const lastId = query['last-id'];
  if (lastId !== undefined && lastId !== '') {
    if (!/^\d{1,18}$/.test(lastId)) throw new InvalidArgument('last-id must be a non-negative integer', 'invalid_argument');
    out.lastId = BigInt(lastId);
  }
  return out;
}

/** `application/json` or a `+json` type, in UTF-8; anything else here is a 415. */
function isJsonType(req: Request): boolean {
  const header = req.headers['content-type'];
  if (header === undefined || header.trim() === '') return true;
  const type = mediaTypeOf(req);
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) return false;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(header)?.[1]?.toLowerCase();
  return charset === undefined || ['utf-8', 'utf8', 'us-ascii'].includes(charset);
}

/** One message of CreateScript or UpdateScript (the two have the same shape). */
type UploadPart = {
  part: { case: 'header'; value: MessageInitShape<typeof script.UploadHeaderSchema> } | { case: 'chunk'; value: Uint8Array };
};

/**
 * The most file bytes one upload message carries. On its way out each message's bytes are
 * copied twice (its protobuf encoding, its gRPC envelope) into `ArrayBuffer`s outside V8's
 * heap that only a garbage collection frees; young-generation collections come with the
 * JavaScript objects each message allocates, so smaller messages bring them after fewer
 * bytes. Socket reads hand over up to 64 KiB at a time: as single messages, a 50 MB upload
 * left 20–35 MiB of such copies at once; in messages of 8 KiB (with the gateway's 1 MiB young
 * generation, see the launcher) about 10 MiB, at the same upload speed. See
 * docs/benchmarks.md, scripts.
 */
export const uploadMessageBytes = 8 * 1024;

/**
 * The upload as the RPC takes it: the header, then the file's bytes as they arrive. `holds`
 * is asked at every chunk and once more before the last message: an upload whose token was revoked meanwhile (a logout, the account deleted while
 * a slow body arrived) ends there, and the script service, seeing no end, stores nothing.
 */
async function* uploadMessages(header: MessageInitShape<typeof script.UploadHeaderSchema>, chunks: AsyncIterable<Uint8Array>, holds: () => void): AsyncGenerator<UploadPart> {
  yield { part: { case: 'header', value: header } };
  for await (const chunk of chunks) {
    holds();
    // Views of the chunk, not copies.
    for (let at = 0; at < chunk.length; at += uploadMessageBytes) {
      yield { part: { case: 'chunk', value: chunk.subarray(at, at + uploadMessageBytes) } };
    }
  }
  holds();
}

/** `attachment; filename="…"; filename*=UTF-8''…` for any file name. */
export function attachmentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Writes a chunk, waiting while the client's socket is full; false when the client left. */
async function writeChunk(res: Response, chunk: Uint8Array): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  return !res.destroyed;
}

/** `/api/v1/script…`: scripts, their versions, archives and build logs. */
export const scriptsResource: Resource = {
  name: 'scripts',
  openapi: scriptsOpenApi,
  routes: ({ clients, auth, config, limiter, limits }: RouteContext) => {
    /** A refused upload is read on this far so the client can read the answer. */
    const uploadDrainBytes = 2 * (config.UPLOAD_LIMIT_BYTES + multipartOverheadBytes);
    /**
     * Streams the request's `file` part into CreateScript or UpdateScript, for as long as the
     * caller's token holds. Counted first against the upload limits, per account and per
     * client (429 before the service is called): each upload costs the script service
     * seconds of CPU when its archive is highly compressed.
     */
    const upload = async (req: Request, principal: Principal, idOrSlug?: string) => {
      await enforceLimits(limiter, limits, [
        { name: 'upload_account', key: principal.userId },
        { name: 'upload_client', key: clientKey(req) },
      ]);
      return streamFilePart(req, { field: 'file', limit: config.UPLOAD_LIMIT_BYTES }, async (file, signal) => {
        let refusal: HttpError | undefined;
        const holds = () => {
          if (!auth.stillHolds(principal)) throw (refusal = tokenRevoked());
        };
        const messages = uploadMessages({ caller: callerOf(principal), fileName: file.fileName, ...(idOrSlug ? { idOrSlug } : {}) }, file.chunks, holds);
        const options = { ...rpcOptions(req, streamingRpcTimeoutMs), signal };
        try {
          const reply = idOrSlug ? await clients.script.updateScript(messages, options) : await clients.script.createScript(messages, options);
          return reply.script;
        } catch (err) {
          // The RPC reports the aborted stream; the reason is the token.
          if (refusal) throw refusal;
          throw err;
        }
      });
    };

    return [
      {
        method: 'post',
        path: '/api/v1/script',
        operationId: 'createScript',
        handler: async (req, res) => {
          const created = await drainingOnError(req, uploadDrainBytes, async () => {
            const principal = await auth.require(req);
            queryOf(req, []);
            return upload(req, principal);
          });
          res.json({ data: scriptFor(res, scriptJson(created)) });
        },
      },
      {
        method: 'get',
        path: '/api/v1/script',
        operationId: 'listScripts',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const query = queryOf(req, ['include', 'filter', 'sort', 'page', 'per_page']);
          const include = includesOf(query);
          const caller = callerOf(principal);
          const reply = await clients.script.listScripts(
            {
              caller,
              filter: query['filter'] ?? '',
              sort: query['sort'] ?? '',
              page: positiveInt(query, 'page') ?? 0,
              perPage: positiveInt(query, 'per_page') ?? 0,
              includeLogs: include.logs,
            },
            rpcOptions(req),
          );
          const [users, executions] = await Promise.all([
            include.user ? ownersOf(clients, req, caller, reply.scripts.map((s) => s.userId)) : undefined,
            include.executions ? executionsOf(clients, req, caller, reply.scripts.map((s) => s.id)) : undefined,
          ]);
          const qgis = fromQgisPlugin(res);
          res.json({
            data: reply.scripts.map((s) => {
              const json = scriptJson(s, { logs: include.logs, ...(executions ? { executions } : {}), ...(users ? { users } : {}) });
              return qgis ? qgisScript(json) : json;
            }),
            page: reply.page,
            per_page: reply.perPage,
            total: Number(reply.total),
          });
        },
      },
      {
        method: 'get',
        path: '/api/v1/script/{script}',
        operationId: 'getScript',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const query = queryOf(req, ['include']);
          const include = includesOf(query);
          const caller = callerOf(principal);
          const reply = await clients.script.getScript({ idOrSlug: scriptKey(req), caller, includeLogs: include.logs }, rpcOptions(req));
          const [users, executions] = await Promise.all([
            include.user && reply.script ? ownersOf(clients, req, caller, [reply.script.userId]) : undefined,
            include.executions && reply.script ? executionsOf(clients, req, caller, [reply.script.id]) : undefined,
          ]);
          res.json({ data: scriptFor(res, scriptJson(reply.script, { logs: include.logs, ...(executions ? { executions } : {}), ...(users ? { users } : {}) })) });
        },
      },
      {
        method: 'patch',
        path: '/api/v1/script/{script}',
        operationId: 'updateScript',
        handler: async (req, res) => {
          if (isMultipart(req)) {
            const updated = await drainingOnError(req, uploadDrainBytes, async () => {
              const principal = await auth.require(req);
              queryOf(req, []);
              return upload(req, principal, scriptKey(req));
            });
            res.json({ data: scriptFor(res, scriptJson(updated)) });
            return;
          }
          const principal = await auth.require(req);
          queryOf(req, []);
          const key = scriptKey(req);
          const caller = callerOf(principal);
          if (hasBody(req) && !isJsonType(req)) {
            throw new HttpError(
              415,
              'unsupported_media_type',
              "Content-Type must be multipart/form-data (a new version in the part 'file') or application/json (name, description)",
            );
          }
          const bytes = await readBody(req, config.BODY_LIMIT_BYTES);
          const body = parseInput(metadataBody, bytes.length === 0 ? undefined : parseJson(bytes));
          if (body.name === undefined && body.description === undefined) {
            throw new InvalidArgument('Nothing to update: give name or description', 'invalid_argument');
          }
          const reply = await clients.script.updateScriptMetadata(
            {
              idOrSlug: key,
              caller,
              ...(body.name !== undefined ? { name: body.name } : {}),
              ...(body.description !== undefined ? { description: body.description ?? '' } : {}),
            },
            rpcOptions(req),
          );
          res.json({ data: scriptFor(res, scriptJson(reply.script)) });
        },
      },
      {
        method: 'delete',
        path: '/api/v1/script/{script}',
        operationId: 'deleteScript',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const reply = await clients.script.deleteScript({ idOrSlug: scriptKey(req), caller: callerOf(principal) }, rpcOptions(req));
          res.json({ data: scriptFor(res, scriptJson(reply.script)) });
        },
      },
      ...(['publish', 'unpublish'] as const).map((action) => ({
        method: 'post' as const,
        path: `/api/v1/script/{script}/${action}`,
        operationId: action === 'publish' ? 'publishScript' : 'unpublishScript',
        handler: async (req: Request, res: Response) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const reply = await clients.script.setScriptPublic(
            { idOrSlug: scriptKey(req), caller: callerOf(principal), public: action === 'publish' },
            rpcOptions(req),
          );
          res.json({ data: scriptFor(res, scriptJson(reply.script)) });
        },
      })),
      {
        method: 'get',
        path: '/api/v1/script/{script}/download',
        operationId: 'downloadScript',
        compress: false,
        handler: async (req, res) => {
          const principal = await auth.require(req);
          queryOf(req, []);
          const abort = new AbortController();
          res.once('close', () => abort.abort());
          const stream = clients.script.downloadScript(
            { idOrSlug: scriptKey(req), caller: callerOf(principal) },
            { ...rpcOptions(req, streamingRpcTimeoutMs), signal: abort.signal },
          );
          const messages = stream[Symbol.asyncIterator]();
          try {
            // Errors (not found, not visible) come before the first message: a normal error answer.
            const first = await messages.next();
            const archive = first.done ? undefined : first.value.archive;
            if (!archive) throw new Error('The download stream did not start with the archive description');
            const fileName = archive.fileName || `${archive.slug || archive.scriptId}.tar.gz`;
            res.status(200);
            res.setHeader('Content-Type', 'application/gzip');
            res.setHeader('Content-Disposition', attachmentDisposition(fileName));
            res.setHeader('Content-Length', String(archive.size));
            if (/^[0-9a-f]{64}$/.test(archive.digest)) {
              res.setHeader('Content-Digest', `sha-256=:${Buffer.from(archive.digest, 'hex').toString('base64')}:`);
            }
            if (req.method === 'HEAD') {
              res.end();
              return;
            }
            if (!first.done && first.value.chunk.length > 0 && !(await writeChunk(res, first.value.chunk))) return;
            for (;;) {
              const next = await messages.next();
              if (next.done) break;
              if (next.value.chunk.length > 0 && !(await writeChunk(res, next.value.chunk))) return;
            }
            res.end();
          } finally {
            await messages.return?.().catch(() => undefined);
          }
        },
      },
      {
        method: 'get',
        path: '/api/v1/script/{script}/log',
        operationId: 'listScriptLogs',
        handler: async (req, res) => {
          const principal = await auth.require(req);
          const { start, lastId } = logQuery(queryOf(req, ['start', 'last-id']));
          const reply = await clients.script.listScriptLogs(
            {
              idOrSlug: scriptKey(req),
              caller: callerOf(principal),
              ...(start ? { start: timestampFromDate(start) } : {}),
              ...(lastId !== undefined ? { lastId } : {}),
            },
            rpcOptions(req),
          );
          res.json({ data: reply.logs.map(scriptLogJson) });
        },
      },
    ];
  },
};
