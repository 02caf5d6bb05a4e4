import { formatApiDate } from '@gef/common';
import { pingOpenApi } from '../openapi/ping';
import type { Resource } from './types';

export const pingResource: Resource = {
  name: 'ping',
  openapi: pingOpenApi,
  routes: () => [
    {
      method: 'get',
      path: '/ping',
      operationId: 'ping',
      handler: (_req, res) => {
        res.json({ status: 'ok', message: 'pong', timestamp: formatApiDate(new Date()) });
      },
    },
  ],
};
