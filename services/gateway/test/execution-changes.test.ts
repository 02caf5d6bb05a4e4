/**
 * The execution service's changes as the gateway follows them (a fake stream): copies are
 * trusted only while the service says it follows the database's changes itself.
 */
import { create } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { execution } from '@gef/protos';
import pino from 'pino';
import { ExecutionChanges } from '../src/streams/execution-changes';

const until = async (check: () => boolean) => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

it("trusts copies only while the service follows the database's changes: not while its batches say it is paused", async () => {
  const queue: execution.WatchChangesResponse[] = [];
  let wake: (() => void) | undefined;
  const push = (batch: { reset?: boolean; paused?: boolean } = {}) => {
    queue.push(create(execution.WatchChangesResponseSchema, batch));
    wake?.();
  };
  const client = {
    watchChanges: (_: unknown, options: { signal: AbortSignal }) =>
      (async function* () {
        for (;;) {
          if (options.signal.aborted) throw new Error('cancelled');
          const next = queue.shift();
          if (next) yield next;
          else await new Promise<void>((r) => (wake = r));
        }
      })(),
  } as unknown as Client<typeof execution.ExecutionService>;
  const changes = new ExecutionChanges(client, pino({ level: 'silent' }));
  const dropped: (string | undefined)[] = [];
  changes.onChange((id) => dropped.push(id));
  push({});
  await changes.start(1000);
  try {
    expect(changes.isConnected).toBe(true);
    // The service lost its listener: everything dropped, and nothing kept until it is back.
    push({ reset: true, paused: true });
    await until(() => !changes.isConnected);
    expect(dropped).toContain(undefined);
    // Keep-alives while it is still away say so too.
    push({ paused: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(changes.isConnected).toBe(false);
    push({ reset: true });
    await until(() => changes.isConnected);
  } finally {
    changes.stop();
    wake?.();
  }
});
