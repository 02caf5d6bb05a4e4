import { errorResponses, okResponse } from './components';
import type { OpenApiResource } from './types';

export const passwordPageOpenApi: OpenApiResource = {
  tag: { name: 'Users' },
  paths: {
    '/reset-password': {
      get: {
        operationId: 'getPasswordPage',
        summary: 'The page a set-password or recovery e-mail links to',
        description:
          'A form for the new password, which it sends with the link\'s token to `POST /api/v1/user/reset-password`. Self-contained: it loads nothing else, and its policy allows only its own script and requests to this origin. Set `PASSWORD_LINK_URL` (user service) to link to a web client\'s page instead.',
        tags: ['Users'],
        security: [],
        parameters: [{ name: 'token', in: 'query', required: false, description: 'The token from the e-mail (the page reads it; the server does not).', schema: { type: 'string', maxLength: 200 } }],
        responses: {
          '200': okResponse('The page.', { 'text/html': { schema: { type: 'string' } } }),
          ...errorResponses(400),
        },
      },
    },
  },
};
