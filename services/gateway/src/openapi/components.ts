import type {
  ComponentsObject,
  HeaderObject,
  MediaTypeObject,
  ParameterObject,
  ReferenceObject,
  ResponseObject,
  ResponsesObject,
  SchemaObject,
} from './types';

/**
 * The reusable parts of the OpenAPI document: the error body, the `{data: …}` envelope,
 * pagination, the date format, standard error answers, list parameters. Resources refer to
 * them through the helpers below, never by writing `$ref` strings by hand.
 */

const headers = {
  XRequestId: {
    description: "The request's id: the client's `X-Request-Id` when it was sane, else a new UUID. Every log line of the request carries it.",
    schema: { type: 'string', maxLength: 128 },
  },
  RetryAfter: {
    description: 'Seconds to wait before trying again.',
    schema: { type: 'integer', minimum: 0 },
  },
  Allow: {
    description: 'The methods the path accepts.',
    schema: { type: 'string', examples: ['GET, HEAD'] },
  },
} satisfies Record<string, HeaderObject>;

const schemas = {
  Error: {
    type: 'object',
    description:
      'Every error answer. `status` repeats the HTTP status. An unexpected failure is `{"status":500,"detail":"Internal error"}` with nothing more. `/auth…` routes also carry `message` and `msg` with the text of `detail`. Some errors add machine-readable fields (`retry_after`, `minutes_remaining`).',
    additionalProperties: { type: ['string', 'number', 'boolean'] },
    required: ['status', 'detail'],
    properties: {
      status: { type: 'integer', minimum: 400, maximum: 599, examples: [404] },
      detail: { type: 'string', description: 'A human-readable message.', examples: ['Script not found'] },
      error: {
        type: 'string',
        description:
          'A machine-readable code: `not_found`, `invalid_argument`, `forbidden`, `conflict`, `authorization_required`, `invalid_token`, `token_expired`, `token_revoked`, `rate_limited`, `payload_too_large`, `unsupported_media_type`, `method_not_allowed`, `unavailable`, …',
        examples: ['not_found'],
      },
      message: { type: 'string', description: 'Only on `/auth…` routes: the same text as `detail`.' },
      msg: { type: 'string', description: 'Only on `/auth…` routes: the same text as `detail`.' },
      retry_after: { type: 'integer', minimum: 0, description: 'With `rate_limited`: seconds to wait.' },
      minutes_remaining: { type: 'integer', minimum: 0, description: 'With `account_locked`: minutes until the lock ends, where known.' },
    },
  },
  ApiDate: {
    type: 'string',
    description:
      'UTC date-time, ISO 8601 without offset and always with six fractional digits. Inputs accept any ISO 8601 form (calendar, week or ordinal dates, extended or basic, with or without time or offset; a reduced date such as `2026-11` means its first instant), and `2026-11-28T05:13:18.123456 00:00` (a `+` that arrived as a space).',
    pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}$',
    examples: ['2026-11-28T05:13:18.000000'],
  },
  Uuid: {
    type: 'string',
    format: 'uuid',
    description: 'Lower case, with dashes.',
    examples: ['1b4e28ba-2fa1-41d2-883f-0016d3cca427'],
  },
  Pagination: {
    type: 'object',
    description: 'Top-level fields of every paginated list, beside `data`.',
    required: ['page', 'per_page', 'total'],
    properties: {
      page: { type: 'integer', minimum: 1, description: 'The page returned, from 1.' },
      per_page: {
        type: 'integer',
        minimum: 1,
        maximum: 1000,
        description: 'Items per page: at most 100 as asked; 1000 for a list asked without `page` and `per_page`.',
      },
      total: { type: 'integer', minimum: 0, description: 'Every match, over all pages.' },
    },
  },
} satisfies Record<string, SchemaObject>;

/** Names of the shared schemas. */
export type SchemaName = keyof typeof schemas;

/** `{$ref}` to a shared schema (resources add theirs with `defineSchemas`). */
export const schemaRef = (name: SchemaName | string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });

export const headerRef = (name: keyof typeof headers): ReferenceObject => ({ $ref: `#/components/headers/${name}` });

export const jsonContent = (schema: SchemaObject, example?: unknown): Record<string, MediaTypeObject> => ({
  'application/json': example === undefined ? { schema } : { schema, example },
});

/** The success envelope: `{"data": <schema>}`. */
export const dataEnvelope = (schema: SchemaObject): SchemaObject => ({
  type: 'object',
  required: ['data'],
  properties: { data: schema },
});

/** A paginated list: `{"data": [<item>], "page", "per_page", "total"}`. */
export const paginatedEnvelope = (item: SchemaObject): SchemaObject => ({
  allOf: [dataEnvelope({ type: 'array', items: item }), schemaRef('Pagination')],
});

/** A 200 answer (the contract never answers 201) with the request-id header. */
export const okResponse = (description: string, content?: Record<string, MediaTypeObject>): ResponseObject => ({
  description,
  headers: { 'X-Request-Id': headerRef('XRequestId') },
  ...(content ? { content } : {}),
});

const errorResponse = (description: string, extraHeaders: Record<string, ReferenceObject> = {}): ResponseObject => ({
  description,
  headers: { 'X-Request-Id': headerRef('XRequestId'), ...extraHeaders },
  content: jsonContent(schemaRef('Error')),
});

const responses = {
  BadRequest: errorResponse(
    'Invalid input: a failed validation, a malformed JSON body (`Malformed JSON body`), a corrupt compressed body, a duplicate e-mail or slug. `error` is `invalid_argument` unless said otherwise.',
  ),
  Unauthorized: errorResponse(
    'Missing, malformed, expired or revoked credentials. `error` is one of `authorization_required`, `invalid_token`, `token_expired`, `token_revoked`.',
  ),
  Forbidden: errorResponse('The caller may see the resource but not change it (`forbidden`).'),
  NotFound: errorResponse('No such resource, or one the caller may not see (`not_found`).'),
  MethodNotAllowed: errorResponse('The path exists but not with this method (`method_not_allowed`).', { Allow: headerRef('Allow') }),
  Conflict: errorResponse('The change conflicts with the current state (`conflict`), e.g. a status change of a run that has ended or is being cancelled.'),
  Unprocessable: errorResponse('Well-formed but refused by the rules, e.g. a weak password (`weak_password`).'),
  PayloadTooLarge: errorResponse(
    'The body, as sent or once inflated, is larger than the limit: 1 MiB by default (`BODY_LIMIT_BYTES`), 64 KiB on the routes anyone may call (logins, registration, password resets) (`payload_too_large`).',
  ),
  UnsupportedMediaType: errorResponse(
    'A Content-Type or Content-Encoding the route does not take (`unsupported_media_type`). Bodies are JSON, optionally gzip or deflate compressed.',
  ),
  TooManyRequests: errorResponse('Rate limited (`rate_limited`, with `retry_after`).', { 'Retry-After': headerRef('RetryAfter') }),
  InternalError: errorResponse('An unexpected failure: exactly `{"status":500,"detail":"Internal error"}`.'),
  NotImplemented: errorResponse('Not implemented yet.'),
  ServiceUnavailable: errorResponse('A service the gateway needs is down or too slow (`unavailable`).', {
    'Retry-After': headerRef('RetryAfter'),
  }),
} satisfies Record<string, ResponseObject>;

/** The error answers, by HTTP status. */
const responseByStatus = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Unprocessable',
  429: 'TooManyRequests',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
} as const satisfies Record<number, keyof typeof responses>;

export type ErrorStatus = keyof typeof responseByStatus;

/** References to the standard error answers: `errorResponses(400, 404)`. 500 is always added. */
export function errorResponses(...statuses: ErrorStatus[]): ResponsesObject {
  const out: ResponsesObject = {};
  for (const status of [...statuses, 500 as const].sort((a, b) => a - b)) {
    out[String(status)] = { $ref: `#/components/responses/${responseByStatus[status]}` };
  }
  return out;
}

const parameters = {
  Page: {
    name: 'page',
    in: 'query',
    description: 'Page number, from 1, at most 1,000,000. Without `page` and `per_page` a list answers its first 1,000 items (as page 1); `total` says whether there are more.',
    schema: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  },
  PerPage: {
    name: 'per_page',
    in: 'query',
    description: 'Items per page, at most 100 (a larger number, of up to 9 digits, is read as 100, and the answer\'s `per_page` says so); 20 when only `page` is given.',
    schema: { type: 'integer', minimum: 1, maximum: 999_999_999 },
  },
  Sort: {
    name: 'sort',
    in: 'query',
    description: 'Comma list of `field [asc|desc]`; `-field` also means descending.',
    schema: { type: 'string' },
  },
  Filter: {
    name: 'filter',
    in: 'query',
    description:
      'Comma-separated AND list of `field OP value` (OP one of `= != > < >= <= like`), an OR group in parentheses (alternatives separated by `|` or `,`). A value may be quoted, `\'…\'` or `"…"`, to hold commas, bars or parentheses: `name=\'Land Productivity (SDG 15.3.1)\'`. `like` is case-insensitive with `%` as its only wildcard (any run of characters); every other character, `_` and `\\` included, matches itself: `name like 100_%` lists the names starting with `100_`. Only documented fields; an unknown field is a 400 naming it.',
    schema: { type: 'string' },
  },
} satisfies Record<string, ParameterObject>;

export const parameterRef = (name: keyof typeof parameters): ReferenceObject => ({ $ref: `#/components/parameters/${name}` });

/** Page and per_page, for every paginated list. */
export const paginationParameters = (): ReferenceObject[] => [parameterRef('Page'), parameterRef('PerPage')];

/** The shared components; resources' own schemas are merged in by the document builder. */
export function sharedComponents(): ComponentsObject {
  return {
    schemas: structuredClone(schemas),
    responses: structuredClone(responses),
    parameters: structuredClone(parameters),
    headers: structuredClone(headers),
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'A Keycloak access token from `POST /auth`, or an execution token (`API_TOKEN`) on the two routes a running script may call.',
      },
    },
  };
}
