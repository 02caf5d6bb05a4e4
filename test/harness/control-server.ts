import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPartName, type Stack } from '@gef/deploy';

/**
 * A small HTTP server on 127.0.0.1 through which test files (another context than
 * globalSetup) stop and start parts of the stack:
 *   GET  /parts              → {pids}
 *   POST /parts/<name>/stop  → {pids} once the part is gone
 *   POST /parts/<name>/kill  → {pids} once SIGKILL took its process group (a crash)
 *   POST /parts/<name>/start → {pids} once the part is ready again
 * Requests are served one at a time; onChange runs after each (the harness rewrites the
 * pids in its JSON file).
 */
export async function startControlServer(stack: Stack, onChange: () => void = () => undefined): Promise<{ server: Server; url: string }> {
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://control');
    const match = /^\/parts\/([a-z]+)\/(stop|kill|start)$/.exec(url.pathname);
    if (req.method === 'GET' && url.pathname === '/parts') return reply(200, { pids: stack.pids() });
    if (req.method !== 'POST' || !match) return reply(404, { error: 'not found' });
    const [, part = '', action] = match;
    if (!isPartName(part)) return reply(400, { error: `unknown part ${part}` });
    const act = { stop: () => stack.stopPart(part), kill: () => stack.killPart(part), start: () => stack.startPart(part) }[action as 'stop' | 'kill' | 'start'];
    const run = queue.then(act).finally(onChange);
    queue = run.catch(() => undefined);
    run.then(
      () => reply(200, { pids: stack.pids() }),
      (error: unknown) => reply(500, { error: error instanceof Error ? error.message : String(error) }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}
