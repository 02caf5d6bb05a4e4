import { dataEnvelope, errorResponses, jsonContent, okResponse, paginatedEnvelope, paginationParameters, parameterRef, schemaRef } from './components';
import type { OpenApiResource, OperationObject, ParameterObject, RequestBodyObject, SchemaObject } from './types';

const bearer = [{ bearerAuth: [] }];
const op = (o: OperationObject): OperationObject => ({ tags: ['Scripts'], security: bearer, ...o });

const scriptParam: ParameterObject = {
  name: 'script',
  in: 'path',
  required: true,
  description: 'A script id (UUID) or slug.',
  schema: { type: 'string', maxLength: 200 },
};

const includeParam: ParameterObject = {
  name: 'include',
  in: 'query',
  description:
    'Comma list of embedded relations: `logs` (the build log, oldest first: at most 1,000 lines and 8 MiB of text, ending on a whole instant, so the rest is read from `/script/{script}/log` with `start` or `last-id`; in a list, 100,000 lines and 8 MiB in all, shared between its scripts), `user` (the owner: `id, name, country, institution`; null when the caller may not see that user), `executions` (the executions of the script that the caller may see — own, ADMIN and above: all — newest first, up to 100, and in a list 10,000 in all, shared between its scripts; without `params` and `results`).',
  schema: { type: 'string', examples: ['logs,user'] },
};

const scriptResponse = (description: string) => okResponse(description, jsonContent(dataEnvelope(schemaRef('Script'))));

const archiveRules =
  'The archive is a gzip-compressed tar with `configuration.json` in its root (`./configuration.json` also counts): `name` (required; the slug is made from it), optional `description`, `runtime` (default `python3`), `cpu_limit`, `memory_limit` (bytes), `timeout` (seconds, at most 604800: a week), `params_schema` (its patterns are matched in linear time: the RE2 subset of ECMAScript, without backreferences, lookahead or lookbehind, repeats at most 1000; it must compile within 1 s); other keys are kept and ignored; no value may nest deeper than 32 levels. Python scripts need `src/main.py`; `requirements.txt` is optional. ' +
  'Anything hostile is refused with 400 and leaves nothing behind: not gzip, not tar, truncated, members with absolute paths or `..`, links pointing outside (also through other links), two members at one path, a member under a path another member makes a file or link, a global pax header setting a path, device files, more than 10,000 members, more inflated bytes than the configured limit (default 500 MB), invalid JSON, a missing `name`, a `name` whose slug reads as a UUID, a `params_schema` that is not a valid JSON Schema, a NUL character or an unpaired surrogate in `configuration.json` or `requirements.txt`, a slug already taken. ' +
  'The upload is streamed: a file beyond `UPLOAD_LIMIT_BYTES` (default 50 MB) is a 413 as soon as the limit is passed. ' +
  'Uploads (new scripts and new versions) are rate limited per account (`RATE_LIMIT_UPLOAD_PER_ACCOUNT`, default 30 a minute) and per client (`RATE_LIMIT_UPLOAD_PER_CLIENT`, default 120 a minute): beyond, a 429 `rate_limited` with `retry_after` and `Retry-After`, before the archive is read.';

const uploadBody = (description: string): RequestBodyObject => ({
  required: true,
  description,
  content: {
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: {
          file: {
            type: 'string',
            format: 'binary',
            contentMediaType: 'application/gzip',
            description: 'The archive. Its file name must end in `.tar.gz` (spaces and extra dots allowed). Other parts are ignored; a second part named `file` is refused (400).',
          },
        },
      },
    },
  },
});

const scriptSchema: SchemaObject = {
  type: 'object',
  required: ['id', 'name', 'slug', 'description', 'status', 'public', 'user_id', 'created_at', 'updated_at', 'version', 'runtime', 'cpu_limit', 'memory_limit', 'timeout'],
  properties: {
    id: schemaRef('Uuid'),
    name: { type: 'string', description: 'From `configuration.json`, or as changed with PATCH.' },
    slug: { type: 'string', description: 'Made from the first name: lower case ASCII, runs of other characters become `-`, 80 characters or fewer. Never changes.', examples: ['my-first-script'] },
    description: { type: 'string', description: 'Empty string when none was given.' },
    status: schemaRef('ScriptStatus'),
    public: { type: 'boolean', description: 'Visible to every user.' },
    user_id: schemaRef('Uuid'),
    created_at: schemaRef('ApiDate'),
    updated_at: schemaRef('ApiDate'),
    version: { type: 'integer', minimum: 1, description: 'The current version number.' },
    runtime: { type: 'string', examples: ['python3'] },
    cpu_limit: { type: ['number', 'null'], description: 'CPU cores; null means the platform default.' },
    memory_limit: { type: ['integer', 'null'], description: 'Bytes; null means the platform default.' },
    timeout: { type: ['integer', 'null'], description: 'Seconds of wall time per run; null means the platform default.' },
    logs: { type: 'array', items: schemaRef('ScriptLog'), description: 'Only with `include=logs`.' },
    user: {
      description: 'Only with `include=user`: the owner, public fields only; null when the caller may not see that user.',
      anyOf: [schemaRef('PublicUser'), { type: 'null' }],
    },
    executions: {
      type: 'array',
      items: schemaRef('Execution'),
      description: 'Only with `include=executions`: the executions of the script the caller may see (own; ADMIN and above: all), newest first, up to 100, without `params` and `results`.',
    },
  },
};

export const scriptsOpenApi: OpenApiResource = {
  tag: {
    name: 'Scripts',
    description:
      'Script archives, their versions, builds and build logs. A caller sees their own scripts and public ones (ADMIN and above: all); a script the caller may not see is a 404, changing one the caller sees but does not own is a 403 (owners and ADMIN and above may change it). Every route needs a bearer token.',
  },
  schemas: {
    Script: scriptSchema,
    ScriptStatus: {
      enum: ['PENDING', 'BUILDING', 'SUCCESS', 'FAIL'],
      description: '`PENDING → BUILDING → SUCCESS | FAIL`; a failed build has its reason as the last log line.',
    },
    ScriptLog: {
      type: 'object',
      required: ['id', 'text', 'register_date', 'script_id'],
      properties: {
        id: { type: 'integer', minimum: 1, description: 'Increases in the order lines were written.' },
        text: { type: 'string', examples: ['Build: installing requirements'] },
        register_date: schemaRef('ApiDate'),
        script_id: schemaRef('Uuid'),
      },
    },
    PublicUser: {
      type: 'object',
      description: 'A user as embedded in other objects: public fields only.',
      required: ['id', 'name', 'country', 'institution'],
      properties: { id: schemaRef('Uuid'), name: { type: 'string' }, country: { type: 'string' }, institution: { type: 'string' } },
    },
  },
  paths: {
    '/api/v1/script': {
      post: op({
        operationId: 'createScript',
        summary: 'Publish a script archive',
        description: `Returns the new script immediately, with status \`PENDING\`; the build (validate, prepare the environment) runs in the background and writes \`Build: …\` log lines. ${archiveRules}`,
        requestBody: uploadBody('`multipart/form-data` with one file part named `file`.'),
        responses: { '200': scriptResponse('The new script, PENDING.'), ...errorResponses(400, 401, 413, 415, 429, 503) },
      }),
      get: op({
        operationId: 'listScripts',
        summary: 'List scripts',
        description:
          'Own and public scripts; ADMIN and above: all. Filter and sort fields: `id, name, slug, description, status, public, user_id, version, runtime, created_at, updated_at`. Default order: `created_at`, then `id`, ascending.',
        parameters: [includeParam, parameterRef('Filter'), parameterRef('Sort'), ...paginationParameters()],
        responses: {
          '200': okResponse('A page of scripts.', jsonContent(paginatedEnvelope(schemaRef('Script')))),
          ...errorResponses(400, 401, 503),
        },
      }),
    },
    '/api/v1/script/{script}': {
      get: op({
        operationId: 'getScript',
        summary: 'A script by id or slug',
        parameters: [scriptParam, includeParam],
        responses: { '200': scriptResponse('The script.'), ...errorResponses(400, 401, 404, 503) },
      }),
      patch: op({
        operationId: 'updateScript',
        summary: 'Upload a new version, or change the name and description',
        description: `Owner or ADMIN and above. With \`multipart/form-data\` (part \`file\`): a new version; the slug never changes and the build starts again (an unchanged \`requirements.txt\` reuses the environment). With JSON \`{name?, description?}\`: metadata only (one of them or both; \`description: null\` clears it). ${archiveRules}`,
        parameters: [scriptParam],
        requestBody: {
          required: true,
          description: 'A new version (multipart) or new metadata (JSON).',
          content: {
            ...uploadBody('').content,
            ...jsonContent(
              {
                type: 'object',
                properties: { name: { type: 'string', minLength: 1, maxLength: 1000 }, description: { type: ['string', 'null'], maxLength: 100_000 } },
              },
              { name: 'Land degradation indicators', description: 'SDG 15.3.1' },
            ),
          },
        },
        responses: { '200': scriptResponse('The script as it is now.'), ...errorResponses(400, 401, 403, 404, 413, 415, 429, 503) },
      }),
      delete: op({
        operationId: 'deleteScript',
        summary: 'Delete a script',
        description: 'Owner or ADMIN and above. Its versions, archives and logs go; executions already made are kept. Returns the script as it was.',
        parameters: [scriptParam],
        responses: { '200': scriptResponse('The script as it was.'), ...errorResponses(400, 401, 403, 404, 503) },
      }),
    },
    '/api/v1/script/{script}/publish': {
      post: op({
        operationId: 'publishScript',
        summary: 'Make a script public',
        description: 'Owner or ADMIN and above. Every user can then see, download and run it.',
        parameters: [scriptParam],
        responses: { '200': scriptResponse('The script, public.'), ...errorResponses(400, 401, 403, 404, 503) },
      }),
    },
    '/api/v1/script/{script}/unpublish': {
      post: op({
        operationId: 'unpublishScript',
        summary: 'Make a script private',
        description: 'Owner or ADMIN and above.',
        parameters: [scriptParam],
        responses: { '200': scriptResponse('The script, private.'), ...errorResponses(400, 401, 403, 404, 503) },
      }),
    },
    '/api/v1/script/{script}/download': {
      get: op({
        operationId: 'downloadScript',
        summary: "Download the current version's archive",
        description:
          'The bytes exactly as uploaded, streamed, never compressed (no `Content-Encoding`, whatever `Accept-Encoding` says). `Content-Disposition` names the uploaded file; `Content-Digest` carries its SHA-256.',
        parameters: [scriptParam],
        responses: {
          '200': {
            description: 'The archive.',
            headers: {
              'X-Request-Id': { $ref: '#/components/headers/XRequestId' },
              'Content-Disposition': { description: '`attachment; filename="<uploaded name>"; filename*=UTF-8\'\'<uploaded name>`', schema: { type: 'string' } },
              'Content-Length': { description: 'The size in bytes.', schema: { type: 'integer', minimum: 0 } },
              'Content-Digest': { description: 'The SHA-256 of the bytes (RFC 9530), e.g. `sha-256=:…:`.', schema: { type: 'string' } },
            },
            content: { 'application/gzip': { schema: { type: 'string', format: 'binary', contentMediaType: 'application/gzip' } } },
          },
          ...errorResponses(400, 401, 404, 503),
        },
      }),
    },
    '/api/v1/script/{script}/log': {
      get: op({
        operationId: 'listScriptLogs',
        summary: 'The build log',
        description: 'Build log lines, oldest first: up to 1000 per call and 8 MiB of text, ending on a whole instant (lines written in one batch share one date), so polling with `start` (the last date read) or `last-id` skips nothing; a page that is all one batch holds the whole batch (at most 1,000 lines), past 8 MiB if it must.',
        parameters: [
          scriptParam,
          {
            name: 'start',
            in: 'query',
            description:
              'Only lines registered strictly after this instant. Any ISO 8601 form (calendar, week or ordinal, with or without time or offset, date-only, or `2026-11-28T05:13:18.123456 00:00` with a `+` that arrived as a space); anything else is a 400.',
            schema: { type: 'string', examples: ['2026-11-28T05:13:18.000000'] },
          },
          {
            name: 'last-id',
            in: 'query',
            description: 'Only lines whose id is strictly greater than this (at most 18 digits).',
            schema: { type: 'integer', minimum: 0 },
          },
        ],
        responses: {
          '200': okResponse('The log lines.', jsonContent(dataEnvelope({ type: 'array', items: schemaRef('ScriptLog') }))),
          ...errorResponses(400, 401, 404, 503),
        },
      }),
    },
  },
};
