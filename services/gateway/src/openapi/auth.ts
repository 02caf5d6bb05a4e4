import { errorResponses, jsonContent, okResponse, schemaRef } from './components';
import type { OpenApiResource, OperationObject } from './types';

const bearer = [{ bearerAuth: [] }];

const loginErrors = errorResponses(400, 401, 413, 415, 429, 503);

const tokenResponse = okResponse(
  'Tokens (no `data` envelope). `expires_in` is the access token lifetime in seconds.',
  jsonContent(schemaRef('Tokens'), {
    access_token: 'eyJhbGciOiJSUzI1NiIs…',
    refresh_token: 'eyJhbGciOiJIUzUxMiIs…',
    expires_in: 3600,
    user_id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
  }),
);

const message = (text: string) => okResponse('Done.', jsonContent(schemaRef('AuthMessage'), { msg: text }));

const op = (o: OperationObject): OperationObject => ({ tags: ['Auth'], ...o });

export const authOpenApi: OpenApiResource = {
  tag: {
    name: 'Auth',
    description:
      'Logins through Keycloak. Errors here also carry `message` and `msg` with the text of `detail`. Logins are rate limited per client and per account, refreshes per client and per account session (429 with `retry_after`); repeated failures lock the account (`account_locked`, with `minutes_remaining`).',
  },
  schemas: {
    Tokens: {
      type: 'object',
      required: ['access_token', 'refresh_token', 'expires_in', 'user_id'],
      properties: {
        access_token: { type: 'string', description: 'A Keycloak-issued JWT (RS256) with `exp`; `sub` is the user id.' },
        refresh_token: { type: 'string' },
        expires_in: { type: 'integer', minimum: 1, description: 'Access token lifetime in seconds.' },
        user_id: schemaRef('Uuid'),
      },
    },
    AuthMessage: {
      type: 'object',
      required: ['msg'],
      properties: { msg: { type: 'string' } },
    },
  },
  paths: {
    '/auth': {
      post: op({
        operationId: 'login',
        summary: 'Log in with e-mail and password',
        description: 'E-mail is case-insensitive; extra keys are ignored. Wrong credentials: 401 `Invalid credentials`. A locked account: 401 `account_locked`.',
        security: [],
        requestBody: {
          required: true,
          content: jsonContent(
            {
              type: 'object',
              required: ['email', 'password'],
              properties: { email: { type: 'string', format: 'email' }, password: { type: 'string' } },
            },
            { email: 'user@example.org', password: 'Correct-Horse-42' },
          ),
        },
        responses: { '200': tokenResponse, ...loginErrors },
      }),
    },
    '/auth/refresh': {
      post: op({
        operationId: 'refreshToken',
        summary: 'New tokens from a refresh token',
        security: [],
        requestBody: {
          required: true,
          content: jsonContent({ type: 'object', required: ['refresh_token'], properties: { refresh_token: { type: 'string' } } }),
        },
        responses: { '200': tokenResponse, ...loginErrors },
      }),
    },
    '/auth/logout': {
      post: op({
        operationId: 'logout',
        summary: 'End this session',
        description: 'The access token used stops working immediately, on every gateway. A `refresh_token` in the body ends that session in Keycloak too.',
        security: bearer,
        requestBody: {
          required: false,
          content: jsonContent({ type: 'object', properties: { refresh_token: { type: 'string' } } }),
        },
        responses: { '200': message('Successfully logged out'), ...errorResponses(400, 401, 413, 415, 503) },
      }),
    },
    '/auth/logout-all': {
      post: op({
        operationId: 'logoutAll',
        summary: 'End every session of the caller',
        security: bearer,
        responses: { '200': message('Successfully logged out from all sessions'), ...errorResponses(400, 401, 413, 415, 503) },
      }),
    },
  },
};
