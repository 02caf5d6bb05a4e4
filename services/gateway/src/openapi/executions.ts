import { dataEnvelope, errorResponses, headerRef, jsonContent, okResponse, paginatedEnvelope, paginationParameters, parameterRef, schemaRef } from './components';
import type { OpenApiResource, OperationObject, ParameterObject, ReferenceObject, SchemaObject } from './types';

// Descriptions avoid the word "at" before times: error bodies are checked for stack-trace
// shapes, and this document is served as one line.

const bearer = [{ bearerAuth: [] }];
const op = (o: OperationObject): OperationObject => ({ tags: ['Executions'], security: bearer, ...o });

const executionParam: ParameterObject = {
  name: 'execution',
  in: 'path',
  required: true,
  description: 'An execution id (UUID). Anything else is a 404.',
  schema: { type: 'string', maxLength: 100 },
};

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
    'Comma list of embedded relations: `script` (the script run; null when deleted or not visible), `user` (the owner: `id, name, country, institution`; null when the caller may not see that user), `logs` (the first lines of the log, oldest first: up to 1000 lines and 8 MiB of line text, counted as the JSON strings take it (a control character may take 6 bytes), at least one line; in a list, 100,000 lines and 8 MiB of text in all, shared equally between its executions, and an execution whose first line is larger than its share gets that line while the answer has room, else none). The whole log is read with `GET /api/v1/execution/{execution}/log`.',
  schema: { type: 'string', examples: ['script,logs'] },
};

const excludeParam: ParameterObject = {
  name: 'exclude',
  in: 'query',
  description: 'Comma list of fields left out: `params`, `results`.',
  schema: { type: 'string', examples: ['params,results'] },
};

const dateQuery = (name: string, description: string): ParameterObject => ({
  name,
  in: 'query',
  description: `${description} Any ISO 8601 form (calendar, week or ordinal, with or without time or offset, date-only, or a \`+\` that arrived as a space); anything else is a 400.`,
  schema: { type: 'string' },
});

const listParameters: (ParameterObject | ReferenceObject)[] = [
  includeParam,
  excludeParam,
  { name: 'status', in: 'query', description: 'Comma list of statuses (any case).', schema: { type: 'string', examples: ['RUNNING,FINISHED'] } },
  { name: 'script_id', in: 'query', description: 'Only runs of this script.', schema: schemaRef('Uuid') },
  dateQuery('updated_at', 'Only executions changed on or after this instant.'),
  dateQuery('start_date', 'Only executions started on or after this instant (the same as `start_date_from`).'),
  dateQuery('end_date', 'Only executions that ended on or before this instant (the same as `end_date_to`).'),
  dateQuery('start_date_from', 'Inclusive lower bound of `start_date`.'),
  dateQuery('start_date_to', 'Inclusive upper bound of `start_date`.'),
  dateQuery('end_date_from', 'Inclusive lower bound of `end_date`.'),
  dateQuery('end_date_to', 'Inclusive upper bound of `end_date`.'),
  parameterRef('Filter'),
  parameterRef('Sort'),
  ...paginationParameters(),
];

const listDescription =
  'Filter and sort fields: `id, script_id, user_id, status, progress, start_date, end_date, updated_at, script_version, queued_at, attempt`. Default order: `start_date` descending, then `id` descending. ' +
  'One answer holds at most 32 MiB of params and results: asked without `page` and `per_page`, the list stops before that (`total` says whether there are more); a page past it is a 400 (`page_too_large`): ask for fewer per page, or `exclude=params,results`.';

const executionResponse = (description: string) => okResponse(description, jsonContent(dataEnvelope(schemaRef('Execution'))));

const executionSchema: SchemaObject = {
  type: 'object',
  required: ['id', 'script_id', 'user_id', 'status', 'progress', 'start_date', 'end_date', 'updated_at', 'script_version', 'queued_at', 'attempt'],
  properties: {
    id: schemaRef('Uuid'),
    script_id: schemaRef('Uuid'),
    user_id: schemaRef('Uuid'),
    status: schemaRef('ExecutionStatus'),
    progress: { type: 'integer', minimum: 0, maximum: 100, description: 'Percent, rounded to a whole number; 100 only when it is 100 (99.6 shows 99).' },
    params: { type: 'object', description: 'The run parameters as given (left out with `exclude=params`).' },
    results: { description: 'What the script returned: any JSON value, null until there are results (left out with `exclude=results`). A result beyond 32 levels, 8 MiB or 100,000 values is not stored: the run ends FAILED with an ERROR log line saying why.' },
    start_date: { ...schemaRef('ApiDate'), description: 'When the run was accepted.' },
    end_date: { anyOf: [schemaRef('ApiDate'), { type: 'null' }], description: 'Set once the status is terminal (FINISHED, FAILED, CANCELLED).' },
    updated_at: schemaRef('ApiDate'),
    script_version: { type: 'integer', minimum: 1, description: 'The script version the run is pinned to.' },
    queued_at: { anyOf: [schemaRef('ApiDate'), { type: 'null' }], description: 'When the run first had to wait for a free slot of its user; null when it never waited.' },
    attempt: { type: 'integer', minimum: 0, description: 'The runner attempt (1 for the first runner, 0 before any runner took it); a run whose runner died is retried on another.' },
    workflow_id: { type: 'string', description: 'ADMIN and above only: the Temporal workflow of the run (`execution-<id>`), to find it in the Temporal UI.' },
    logs: { type: 'array', items: schemaRef('ExecutionLog'), description: 'Only with `include=logs`.' },
    script: { description: 'Only with `include=script`; null when the script was deleted or is not visible.', anyOf: [schemaRef('Script'), { type: 'null' }] },
    user: { description: 'Only with `include=user`; null when the caller may not see that user.', anyOf: [schemaRef('PublicUser'), { type: 'null' }] },
  },
};

const logSchema: SchemaObject = {
  type: 'object',
  required: ['id', 'text', 'level', 'register_date', 'execution_id', 'attempt'],
  properties: {
    id: { type: 'integer', minimum: 1, description: 'Increases in the order lines were stored; the event id of the event stream.' },
    text: { type: 'string', examples: ['Processing tile 3 of 12'] },
    level: schemaRef('LogLevel'),
    register_date: schemaRef('ApiDate'),
    execution_id: schemaRef('Uuid'),
    attempt: { type: 'integer', minimum: 0, description: 'The runner attempt the line belongs to (0: written before any runner, or from outside).' },
  },
};

const updateBodySchema: SchemaObject = {
  type: 'object',
  description: 'At least one of `status`, `progress`, `results`; other fields are ignored.',
  properties: {
    status: { type: 'string', description: 'Any case.', enum: ['PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLING', 'CANCELLED'] },
    progress: { type: 'number', minimum: 0, maximum: 100, description: 'Percent; fractions are accepted (shown rounded).' },
    results: { description: 'Any JSON value (object, array, string, number, boolean or null), nested at most 32 levels of objects and arrays, at most 8 MiB of JSON text (UTF-8) and 100,000 JSON values (each number, string, boolean, null, array and object counts one; keys do not); otherwise 400.' },
  },
};

const eventsDescription = [
  'Server-Sent Events (`text/event-stream`) of the run: first its state, then log lines, progress and status changes as they happen; the stream ends after the terminal status and every line.',
  'Events: `status` (`{"status", "execution"}`), `progress` (`{"progress"}`, a whole percent), `log` (an `ExecutionLog`), and a last `end` (`{}`).',
  'Each event id is the id of the last log line sent so far (for `log`, its own id). A client that reconnects with `Last-Event-ID`, or `?last-id=`, gets every line after that id exactly once, then the state again. The stream needs the `Authorization` header like every authenticated route, which a browser’s `EventSource` cannot send: browsers read it with `fetch` and a stream reader (or an SSE client built on them), which can also send `Last-Event-ID`. Comments (`: keep-alive`) are sent every 15 seconds while nothing happens.',
  'Errors (not found, not visible) are JSON answers before the stream starts.',
  'A user holds at most `EVENT_STREAMS_PER_USER` (default 20; ADMIN and above `EVENT_STREAMS_PER_ADMIN`, default 100) open streams on each gateway (all its processes together); one more is a 429 `rate_limited` with `Retry-After`: close a stream, or try again later.',
].join(' ');

export const executionsOpenApi: OpenApiResource = {
  tag: {
    name: 'Executions',
    description:
      'Runs of scripts: status, progress, params, results, logs, cancellation and live events. A caller sees their own executions (ADMIN and above: all); anything else is a 404. Status, progress, results and log lines are set by the runner, or by ADMIN and above and by the running script itself with its `API_TOKEN` (external runtimes).',
  },
  schemas: {
    Execution: executionSchema,
    ExecutionStatus: {
      enum: ['PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLING', 'CANCELLED'],
      description:
        '`PENDING` (accepted, waiting for a slot of its user) → `READY` (handed to a runner) → `RUNNING` → `FINISHED | FAILED`, or `CANCELLING → CANCELLED`. Terminal statuses are final.',
    },
    ExecutionLog: logSchema,
    ExecutionEvent: {
      type: 'object',
      description:
        'One event of `GET /api/v1/execution/{execution}/events` (the schema describes each event of the stream, as OpenAPI 3.2 `itemSchema` does), e.g. `id: 42\\nevent: log\\ndata: {"id":42,"text":"Processing","level":"INFO",…}\\n\\n`. `data` is JSON: `{"status", "execution"}` for `status`, `{"progress"}` for `progress`, an `ExecutionLog` for `log`, `{}` for `end`. The stream opens with `retry: 2000` and carries `: keep-alive` comments, neither of which is an event.',
      required: ['event', 'data'],
      properties: {
        event: { enum: ['status', 'progress', 'log', 'end'] },
        data: { type: 'string', contentMediaType: 'application/json', description: 'The event\'s JSON.' },
        id: { type: 'string', pattern: '^[0-9]+$', description: 'The id of the last log line sent so far (0 before any); what `Last-Event-ID` resumes after.' },
        retry: { type: 'integer', minimum: 0 },
      },
    },
    LogLevel: { enum: ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'], description: 'Sent as `WARN` or `WARNING` (any case); stored as `WARNING`.' },
    CancellationDetails: {
      type: 'object',
      required: ['previous_status', 'immediate', 'requested_at', 'requested_by', 'message'],
      properties: {
        previous_status: schemaRef('ExecutionStatus'),
        immediate: { type: 'boolean', description: 'True when the run had not started and is CANCELLED already; false when its process is being stopped (CANCELLING, then CANCELLED).' },
        requested_at: schemaRef('ApiDate'),
        requested_by: { ...schemaRef('Uuid'), description: 'The user who asked.' },
        message: { type: 'string', description: 'What happens, in words.' },
      },
    },
  },
  paths: {
    '/api/v1/script/{script}/run': {
      post: op({
        operationId: 'runScript',
        summary: 'Run a script',
        description:
          'Runs the current version of a visible script (else 404) whose build succeeded (else 400 `… is not BUILT`). The params are the query string (values as strings) merged with the JSON object body, the body winning; the key `token` is dropped from both. A body that is not a JSON object is a 400. When the script declares `params_schema`, params that fail it are a 400 naming the problem. ' +
          'Returns the new execution (`PENDING`, progress 0) immediately; a user runs up to `max_concurrent_executions` (default 3; ADMIN and above: no limit) together, the others wait in order, at most `MAX_WAITING_EXECUTIONS` (default 500) at once: beyond, a run is refused with 429 `rate_limited`. Runs are rate limited per account (`RATE_LIMIT_RUN_PER_ACCOUNT`) and per client address (`RATE_LIMIT_RUN_PER_CLIENT`). Compiling the `params_schema` of script versions not run lately costs the caller: past 5 s of compile time a minute, such a run is a 429 `rate_limited` for a few seconds. A user whose deletion has begun runs nothing more (401 `token_revoked`).',
        parameters: [scriptParam],
        requestBody: {
          required: false,
          description: 'The params, a JSON object (optional), nested at most 32 levels of objects and arrays, checked against the script\'s `params_schema` (400 `invalid_params` when they do not match, or cannot be checked within 200 ms).',
          content: jsonContent({ type: 'object', additionalProperties: true }, { year_initial: 2001, year_final: 2015 }),
        },
        responses: { '200': executionResponse('The new execution, PENDING.'), ...errorResponses(400, 401, 404, 413, 415, 429, 503) },
      }),
    },
    '/api/v1/execution': {
      get: op({
        operationId: 'listExecutions',
        summary: 'List executions',
        description: `Own executions; ADMIN and above: every execution, and \`user_id\` narrows to one user. ${listDescription}`,
        parameters: [...listParameters, { name: 'user_id', in: 'query', description: "Only this user's executions (for a USER, only their own id matches anything).", schema: schemaRef('Uuid') }],
        responses: {
          '200': okResponse('A page of executions.', jsonContent(paginatedEnvelope(schemaRef('Execution')))),
          ...errorResponses(400, 401, 503),
        },
      }),
    },
    '/api/v1/execution/user': {
      get: op({
        operationId: 'listMyExecutions',
        summary: "The caller's own executions",
        description: `The caller's own executions, whatever the role. ${listDescription}`,
        parameters: [...listParameters, { name: 'user_id', in: 'query', description: "Accepted for older clients; only the caller's own executions are listed.", schema: schemaRef('Uuid') }],
        responses: {
          '200': okResponse('A page of executions.', jsonContent(paginatedEnvelope(schemaRef('Execution')))),
          ...errorResponses(400, 401, 503),
        },
      }),
    },
    '/api/v1/execution/{execution}': {
      get: op({
        operationId: 'getExecution',
        summary: 'An execution',
        description: 'The owner or ADMIN and above; anyone else gets a 404.',
        parameters: [executionParam, includeParam, excludeParam],
        responses: { '200': executionResponse('The execution.'), ...errorResponses(400, 401, 404, 503) },
      }),
      patch: op({
        operationId: 'updateExecution',
        summary: 'Set status, progress or results',
        description:
          'For ADMIN and above, and for the running script with its `API_TOKEN` (an execution token, only for its own execution and only while the run holds it; to it any other execution is a 404). External runtimes use this route. ' +
          'Terminal statuses are final: a different status afterwards is a 409, the same terminal status again changes nothing. Before that a status moves only forward (`PENDING` → `READY` → `RUNNING`) or to an end: a run waiting for a slot may only be ended (the platform alone starts it), a run going back is a 409, and one being cancelled (`CANCELLING`) may only become `CANCELLED`. Reaching a terminal status sets `end_date` and, unless `progress` is in the same body, progress 100, and stops the run if a runner still executes it. Bodies may be gzip-compressed.',
        parameters: [executionParam],
        requestBody: { required: true, content: jsonContent(updateBodySchema, { status: 'FINISHED', results: { area_km2: 12.5 } }) },
        responses: { '200': executionResponse('The execution as it is now.'), ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503) },
      }),
    },
    '/api/v1/execution/{execution}/cancel': {
      post: op({
        operationId: 'cancelExecution',
        summary: 'Cancel an execution',
        description:
          'The owner or ADMIN and above. A run that has not started becomes `CANCELLED` immediately; a running one becomes `CANCELLING`, its process is stopped (signal, grace period, kill) and it ends `CANCELLED`, with log lines saying what happened. `CANCELLED` sets `end_date` and progress 100, however the run ended. A terminal execution is a 400; one already cancelling is a 409.',
        parameters: [executionParam],
        responses: {
          '202': okResponse(
            'Accepted: the execution and what the request did.',
            jsonContent(
              dataEnvelope({
                type: 'object',
                required: ['execution', 'cancellation_details'],
                properties: { execution: schemaRef('Execution'), cancellation_details: schemaRef('CancellationDetails') },
              }),
            ),
          ),
          ...errorResponses(400, 401, 404, 409, 503),
        },
      }),
    },
    '/api/v1/execution/{execution}/log': {
      get: op({
        operationId: 'listExecutionLogs',
        summary: 'The log of an execution',
        description: 'Log lines, oldest first: up to 1000 from the start, up to 5000 after `start` or `last-id`, and up to 8 MiB of line text, counted as the JSON strings take it (a control character may take 6 bytes): a page of long lines stops early, always with one line or more. Continue from the last line with either. A full page (by count or by bytes) ends on a whole instant (the lines of one `register_date` are all in it, or all in the next), so polling with `start` misses none; a page that is one instant holds all of it, so it may pass 8 MiB by up to one runner batch. The lines of every runner attempt stay, each with its `attempt`.',
        parameters: [
          executionParam,
          dateQuery('start', 'Only lines registered strictly after this instant.'),
          { name: 'last-id', in: 'query', description: 'Only lines whose id is strictly greater than this (at most 18 digits).', schema: { type: 'integer', minimum: 0 } },
        ],
        responses: {
          '200': okResponse('The log lines.', jsonContent(dataEnvelope({ type: 'array', items: schemaRef('ExecutionLog') }))),
          ...errorResponses(400, 401, 404, 503),
        },
      }),
      post: op({
        operationId: 'appendExecutionLog',
        summary: 'Append a log line',
        description:
          'For ADMIN and above, and for the running script with its `API_TOKEN` (own execution only, while the run holds it). `text` and `level` are both required; level is one of `DEBUG, INFO, WARN, WARNING, ERROR, CRITICAL` (any case; `WARN` is stored as `WARNING`). Bodies may be gzip-compressed. A script appending with its `API_TOKEN` may append as much as the runner keeps of what it prints (`API_LOG_MAX_LINES`, default 1,000,000 lines, and `API_LOG_MAX_BYTES`, 256 MiB of text, over all its attempts); past that its lines are refused with 400 `log_limit_reached`.',
        parameters: [executionParam],
        requestBody: {
          required: true,
          content: jsonContent(
            { type: 'object', required: ['text', 'level'], properties: { text: { type: 'string' }, level: { type: 'string', examples: ['INFO', 'warn'] } } },
            { text: 'Processing tile 3 of 12', level: 'INFO' },
          ),
        },
        responses: {
          '200': okResponse('The stored line.', jsonContent(dataEnvelope(schemaRef('ExecutionLog')))),
          ...errorResponses(400, 401, 403, 404, 413, 415, 503),
        },
      }),
    },
    '/api/v1/execution/{execution}/download-results': {
      get: op({
        operationId: 'downloadExecutionResults',
        summary: 'Download the results',
        description: 'The owner or ADMIN and above. The results as a JSON attachment (`<execution id>.json`): exactly the value the script returned, `null` when there is none.',
        parameters: [executionParam],
        responses: {
          '200': {
            description: 'The results.',
            headers: {
              'X-Request-Id': headerRef('XRequestId'),
              'Content-Disposition': { description: '`attachment; filename="<execution id>.json"`', schema: { type: 'string' } },
            },
            content: { 'application/json': { schema: {} } },
          },
          ...errorResponses(400, 401, 404, 503),
        },
      }),
    },
    '/api/v1/execution/{execution}/events': {
      get: op({
        operationId: 'watchExecution',
        summary: 'Live events of an execution',
        description: eventsDescription,
        parameters: [
          executionParam,
          { name: 'Last-Event-ID', in: 'header', description: 'Resume strictly after this log line id (at most 18 digits).', schema: { type: 'integer', minimum: 0 } },
          { name: 'last-id', in: 'query', description: 'The same as `Last-Event-ID`, for clients that cannot set headers (the header wins).', schema: { type: 'integer', minimum: 0 } },
          { name: 'lastEventId', in: 'query', description: 'The same as `last-id` (which wins), as event-source polyfills send it on reconnecting.', schema: { type: 'integer', minimum: 0 } },
          { name: '_', in: 'query', description: 'Ignored: the cache-busting value some event-source clients add.', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'The event stream.',
            headers: { 'X-Request-Id': headerRef('XRequestId') },
            content: { 'text/event-stream': { schema: schemaRef('ExecutionEvent') } },
          },
          ...errorResponses(400, 401, 404, 429, 503),
        },
      }),
    },
  },
};
