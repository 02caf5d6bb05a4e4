import { docsOpenApi } from '../openapi/docs';
import { acceptsGzip } from '../compression';
import { HttpError } from '../http-errors';
import { DocsAssets, docsContentSecurityPolicy, docsPage, docsPath } from '../swagger-ui';
import type { Resource } from './types';

export const docsResource: Resource = {
  name: 'docs',
  openapi: docsOpenApi,
  routes: (ctx) => {
    const assets = new DocsAssets('/swagger.json');
    const page = docsPage(`${ctx.openapi.info.title} ${ctx.openapi.info.version}`);
    return [
      {
        method: 'get',
        path: '/swagger.json',
        operationId: 'getOpenApiDocument',
        handler: (_req, res) => {
          res.setHeader('Cache-Control', 'no-cache');
          res.json(ctx.openapi);
        },
      },
      {
        method: 'get',
        path: docsPath,
        operationId: 'getApiDocs',
        handler: (_req, res) => {
          res.setHeader('Content-Security-Policy', docsContentSecurityPolicy);
          res.setHeader('Cache-Control', 'no-cache');
          res.type('html').send(page);
        },
      },
      {
        method: 'get',
        path: `${docsPath}/{asset}`,
        operationId: 'getApiDocsAsset',
        handler: async (req, res) => {
          const asset = await assets.get(String(req.params['asset']));
          if (!asset) throw new HttpError(404, 'not_found', 'Not found');
          res.setHeader('Content-Type', asset.contentType);
          res.setHeader('Cache-Control', 'public, max-age=3600');
          res.vary('Accept-Encoding');
          if (asset.gzipped && acceptsGzip(req.headers['accept-encoding'])) {
            res.setHeader('Content-Encoding', 'gzip');
            res.send(asset.gzipped);
          } else {
            res.send(asset.body);
          }
        },
      },
    ];
  },
};
