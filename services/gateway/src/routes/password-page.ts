import { passwordPageOpenApi } from '../openapi/password-page';
import { passwordPage, passwordPageContentSecurityPolicy, passwordPagePath } from '../password-page';
import { queryOf } from '../query';
import type { Resource } from './types';

export const passwordPageResource: Resource = {
  name: 'password-page',
  openapi: passwordPageOpenApi,
  routes: () => [
    {
      method: 'get',
      path: passwordPagePath,
      operationId: 'getPasswordPage',
      handler: (req, res) => {
        queryOf(req, ['token']);
        res.setHeader('Content-Security-Policy', passwordPageContentSecurityPolicy);
        res.type('html').send(passwordPage);
      },
    },
  ],
};
