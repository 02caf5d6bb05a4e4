import { dataEnvelope, errorResponses, jsonContent, okResponse, paginatedEnvelope, paginationParameters, parameterRef, schemaRef } from './components';
import type { OpenApiResource, OperationObject, ParameterObject } from './types';

const bearer = [{ bearerAuth: [] }];
const op = (o: OperationObject): OperationObject => ({ tags: ['Users'], ...o });

const userParam: ParameterObject = {
  name: 'user',
  in: 'path',
  required: true,
  description: 'A user id (UUID) or e-mail address.',
  schema: { type: 'string', maxLength: 320 },
};

const includeParam: ParameterObject = {
  name: 'include',
  in: 'query',
  description: 'Comma list of embedded relations: `scripts`.',
  schema: { type: 'string' },
};

const userResponse = (description: string) => okResponse(description, jsonContent(dataEnvelope(schemaRef('User'))));

const profileProperties = {
  name: { type: 'string', maxLength: 200 },
  country: { type: 'string', maxLength: 100 },
  institution: { type: 'string', maxLength: 300 },
  email_notifications_enabled: {
    type: 'boolean',
    description: 'Opt in (true) or out (false) of an e-mail each time one of your executions reaches a terminal status (FINISHED, FAILED, CANCELLED). Default false.',
  },
} as const;

export const usersOpenApi: OpenApiResource = {
  tag: {
    name: 'Users',
    description:
      'Users and their profiles. Credentials and roles live in Keycloak. Reading a user you may not see is a 404; changing one you can see but may not change is a 403.',
  },
  schemas: {
    User: {
      type: 'object',
      required: ['id', 'email', 'name', 'country', 'institution', 'role', 'email_notifications_enabled', 'created_at', 'updated_at'],
      properties: {
        id: schemaRef('Uuid'),
        email: { type: 'string', format: 'email', description: 'Stored lower case.' },
        name: { type: 'string' },
        country: { type: 'string' },
        institution: { type: 'string' },
        role: { enum: ['USER', 'ADMIN', 'SUPERADMIN'] },
        email_notifications_enabled: {
          type: 'boolean',
          description: 'Whether the user gets an e-mail when one of their executions reaches a terminal status (FINISHED, FAILED, CANCELLED). Not opted in (false) unless set at registration or with PATCH.',
        },
        created_at: schemaRef('ApiDate'),
        updated_at: schemaRef('ApiDate'),
        scripts: {
          type: 'array',
          items: schemaRef('Script'),
          description: 'Only with `include=scripts`: the scripts of the user that the caller may see, oldest first, up to 100 (in a list, 10,000 in all, shared between its users).',
        },
      },
    },
    Role: { enum: ['USER', 'ADMIN', 'SUPERADMIN'], description: 'Case-insensitive on input.' },
  },
  paths: {
    '/api/v1/user': {
      post: op({
        operationId: 'createUser',
        summary: 'Register a user',
        description:
          'No authentication needed for a USER. Without a password the user gets an e-mail with a single-use link (one hour from the e-mail) to set one; when the mail server is away the account is still created and the e-mail goes out once it is back (503 only when it cannot be queued either); with one, it must pass the password policy (≥ 12 characters, upper, lower, digit, symbol; 422 otherwise). `email_notifications_enabled: true` opts in to an e-mail when a run ends (default false). A role above USER needs a SUPERADMIN (403). Duplicate e-mail: 400. Rate limited per client address and per e-mail address (`RATE_LIMIT_REGISTER_PER_CLIENT`, `RATE_LIMIT_REGISTER_PER_ACCOUNT`; 429 `rate_limited`).',
        security: [{}, { bearerAuth: [] }],
        requestBody: {
          required: true,
          content: jsonContent(
            {
              type: 'object',
              required: ['email', 'name'],
              properties: {
                email: { type: 'string', format: 'email' },
                password: { type: ['string', 'null'], description: 'Absent or null: the user gets an e-mail with a link to set one. Any string, even empty, must pass the password policy (422).' },
                ...profileProperties,
                role: schemaRef('Role'),
              },
            },
            { email: 'ada@example.org', name: 'Ada Lovelace', password: 'Correct-Horse-42', country: 'UK', institution: 'Analytical Engines' },
          ),
        },
        responses: { '200': userResponse('The new user.'), ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503) },
      }),
      get: op({
        operationId: 'listUsers',
        summary: 'List users (ADMIN and above)',
        description:
          'ADMINs see USERs (and themselves); SUPERADMINs see everyone. Filter and sort fields: `id, email, name, country, institution, role, created_at, updated_at` (`role` filters only). Default order: `created_at` ascending.',
        security: bearer,
        parameters: [parameterRef('Filter'), parameterRef('Sort'), ...paginationParameters(), includeParam],
        responses: {
          '200': okResponse('A page of users.', jsonContent(paginatedEnvelope(schemaRef('User')))),
          ...errorResponses(400, 401, 403, 503),
        },
      }),
    },
    '/api/v1/user/me': {
      get: op({
        operationId: 'getMe',
        summary: 'The caller',
        security: bearer,
        parameters: [includeParam],
        responses: { '200': userResponse('The caller.'), ...errorResponses(400, 401, 404, 503) },
      }),
      patch: op({
        operationId: 'updateMe',
        summary: "Change the caller's profile or password",
        description:
          '`name`, `country`, `institution`, `email_notifications_enabled`; `role` is ignored. `password` with an equal `repeatPassword` changes the password (policy: 422). Values equal to the stored ones are accepted and change nothing (200). No updatable field at all: 400 `Not updated`.',
        security: bearer,
        requestBody: {
          required: true,
          content: jsonContent({
            type: 'object',
            properties: { ...profileProperties, password: { type: 'string' }, repeatPassword: { type: 'string' } },
          }),
        },
        responses: { '200': userResponse('The updated caller.'), ...errorResponses(400, 401, 404, 413, 415, 422, 503) },
      }),
      delete: op({
        operationId: 'deleteMe',
        summary: 'Delete the caller (USER only)',
        description:
          'Admins get 403. Removes the Keycloak user, their scripts and their own executions with all logs, reliably: the deletion is recorded before anything changes, logins and tokens stop at once, and the rest is removed in the background (also while the workflow engine is away; once recorded it finishes even if this request then fails). Returns the user as it was.',
        security: bearer,
        responses: { '200': userResponse('The user as it was.'), ...errorResponses(400, 401, 403, 404, 503) },
      }),
    },
    '/api/v1/user/me/change-password': {
      patch: op({
        operationId: 'changeMyPassword',
        summary: "Change the caller's password",
        description: 'Wrong old password: 401. Weak new password: 422. Every other session of the caller ends.',
        security: bearer,
        requestBody: {
          required: true,
          content: jsonContent({
            type: 'object',
            required: ['old_password', 'new_password'],
            properties: { old_password: { type: 'string' }, new_password: { type: 'string' } },
          }),
        },
        responses: { '200': userResponse('The caller.'), ...errorResponses(400, 401, 404, 413, 415, 422, 503) },
      }),
    },
    '/api/v1/user/reset-password': {
      post: op({
        operationId: 'resetPassword',
        summary: 'Set a password from an e-mailed link',
        description: 'Consumes the single-use token from a set-password or recover-password e-mail. Bad, used or expired token: 404. Weak password: 422. Clears a lockout.',
        security: [],
        requestBody: {
          required: true,
          content: jsonContent({
            type: 'object',
            required: ['token', 'password'],
            properties: { token: { type: 'string' }, password: { type: 'string' } },
          }),
        },
        responses: { '200': userResponse('The user.'), ...errorResponses(400, 404, 413, 415, 422, 429, 503) },
      }),
    },
    '/api/v1/user/{user}': {
      get: op({
        operationId: 'getUser',
        summary: 'A user by id or e-mail',
        security: bearer,
        parameters: [userParam, includeParam],
        responses: { '200': userResponse('The user.'), ...errorResponses(400, 401, 404, 503) },
      }),
      patch: op({
        operationId: 'updateUser',
        summary: 'Change a user (ADMIN: USERs; SUPERADMIN: all)',
        description: 'Takes `role, name, country, institution, email_notifications_enabled`; values equal to the stored ones change nothing (200), none of them at all is a 400 `Not updated`. Granting a role above USER needs a SUPERADMIN. A role change ends the user\'s current tokens. A lower role for a user who holds the higher one through a Keycloak group or a composite role is refused (400 `role_granted_in_keycloak`, nothing changed): that grant is changed in Keycloak.',
        security: bearer,
        parameters: [userParam],
        requestBody: {
          required: true,
          content: jsonContent({ type: 'object', properties: { ...profileProperties, role: schemaRef('Role') } }),
        },
        responses: { '200': userResponse('The updated user.'), ...errorResponses(400, 401, 403, 404, 413, 415, 503) },
      }),
      delete: op({
        operationId: 'deleteUser',
        summary: 'Delete a user (ADMIN: USERs; SUPERADMIN: all)',
        description:
          'Removes the Keycloak user, their scripts and their own executions with all logs, reliably: the deletion is recorded before anything changes, logins and tokens stop at once, and the rest is removed in the background (also while the workflow engine is away; once recorded it finishes even if this request then fails). Returns the user as it was.',
        security: bearer,
        parameters: [userParam],
        responses: { '200': userResponse('The user as it was.'), ...errorResponses(400, 401, 403, 404, 503) },
      }),
    },
    '/api/v1/user/{user}/recover-password': {
      post: op({
        operationId: 'recoverPassword',
        summary: 'Mail a password reset link',
        description: 'No authentication, no body. Always 200, whether or not the account exists (404 only for a path no account could have, such as one holding NUL). The link is single-use and valid for one hour from its e-mail, which goes out once the mail server is back when it is away. Rate limited per client and per account.',
        security: [],
        parameters: [userParam],
        responses: {
          '200': okResponse(
            'Always the same answer.',
            jsonContent(dataEnvelope({ type: 'object', required: ['message'], properties: { message: { type: 'string' } } })),
          ),
          ...errorResponses(400, 404, 429, 503),
        },
      }),
    },
  },
};
