import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

/**
 * The interactive API docs, served from the local `swagger-ui-dist` package (no CDN: the
 * machines may have no internet).
 */

/** Where the docs live; every asset is under it. */
export const docsPath = '/api/docs';

/** Files served from swagger-ui-dist, by name, with their media type. Nothing else is. */
const packageAssets: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'index.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** Written by the gateway: starts Swagger UI on /swagger.json (a file, so no inline script). */
const initializerName = 'swagger-initializer.js';

/** Every asset name `GET /api/docs/{asset}` serves. */
export const docsAssetNames: readonly string[] = [...Object.keys(packageAssets), initializerName];

export interface DocsAsset {
  body: Buffer;
  /** The same bytes gzip-compressed, when that is smaller. */
  gzipped: Buffer | undefined;
  contentType: string;
}

function initializer(specUrl: string): string {
  return `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(specUrl)},
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout',
  });
});
`;
}

/** The docs page. Asset URLs are absolute so `/api/docs` and `/api/docs/` both work. */
export function docsPage(title: string): string {
  const escaped = title.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>${escaped}</title>
    <link rel="stylesheet" type="text/css" href="${docsPath}/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="${docsPath}/index.css">
    <link rel="icon" type="image/png" href="${docsPath}/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="${docsPath}/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${docsPath}/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${docsPath}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="${docsPath}/${initializerName}" charset="UTF-8"></script>
  </body>
</html>
`;
}

/** The Content-Security-Policy of the docs pages: only this origin's scripts and styles. */
export const docsContentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const gzip = promisify(zlib.gzip);

function packageDir(): string {
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

/** Loads each asset once (and its gzip form), then serves it from memory. */
export class DocsAssets {
  private readonly cache = new Map<string, Promise<DocsAsset>>();

  constructor(private readonly specUrl: string) {}

  /** The asset, or undefined when the name is not one of `docsAssetNames`. */
  get(name: string): Promise<DocsAsset> | undefined {
    if (!docsAssetNames.includes(name)) return undefined;
    let asset = this.cache.get(name);
    if (!asset) {
      asset = this.load(name);
      // A failed read is retried on the next request rather than cached.
      asset.catch(() => this.cache.delete(name));
      this.cache.set(name, asset);
    }
    return asset;
  }

  private async load(name: string): Promise<DocsAsset> {
    const contentType = packageAssets[name] ?? 'text/javascript; charset=utf-8';
    const body =
      name === initializerName ? Buffer.from(initializer(this.specUrl)) : await fs.readFile(path.join(packageDir(), name));
    const zipped = contentType.startsWith('image/') ? undefined : await gzip(body);
    return { body, contentType, gzipped: zipped && zipped.length < body.length ? zipped : undefined };
  }
}
