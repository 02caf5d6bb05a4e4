/**
 * The launcher starts the Temporal dev server again when it exits during start because it
 * lost the race for one of the ports it picks for itself, and only then. The dev server
 * here is a stand-in script: it fails its first starts the way the real one does and then
 * answers the two URLs the launcher waits on.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartExitedError } from '../src/errors';
import { freeStackPorts } from '../src/ports';
import { lastStartLog } from '../src/process';
import { createStack, type StackRuntime } from '../src/stack';
import { lostPortRace } from '../src/temporal';

jest.setTimeout(60_000);

const PORT_TAKEN = 'Failed to start gRPC listener service=matching error=listen tcp 127.0.0.1:46219: bind: address already in use';

let dir: string;
let stack: StackRuntime | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gef-temporal-start-'));
});
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A stand-in CLI: its first `failures` starts print `failure` and exit 1; later starts
 * answer 200 on --http-port and --ui-port. Each start appends a line to a count file.
 */
function fakeTemporal(failures: number, failure: string): { binary: string; starts: () => number } {
  const binary = join(dir, 'temporal');
  const count = join(dir, 'starts');
  writeFileSync(
    binary,
    `#!${process.execPath}
const fs = require('node:fs');
const http = require('node:http');
fs.appendFileSync(${JSON.stringify(count)}, 'start\\n');
const starts = fs.readFileSync(${JSON.stringify(count)}, 'utf8').split('\\n').filter(Boolean).length;
if (starts <= ${failures}) {
  console.error(${JSON.stringify(failure)});
  process.exit(1);
}
const arg = (name) => Number(process.argv[process.argv.indexOf(name) + 1]);
for (const port of [arg('--http-port'), arg('--ui-port')]) {
  http.createServer((req, res) => res.end('{}')).listen(port, '127.0.0.1');
}
console.log('started');
`,
  );
  chmodSync(binary, 0o755);
  return { binary, starts: () => (existsSync(count) ? readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0) };
}

async function startTemporal(binary: string, status: string[]): Promise<StackRuntime> {
  stack = createStack({
    parts: 'temporal',
    dataDir: join(dir, 'data'),
    cacheDir: join(dir, 'cache'),
    ports: await freeStackPorts(),
    processEnv: { PATH: process.env.PATH, TEMPORAL_CLI: binary },
    gracePeriodMs: 1000,
    onStatus: (line) => status.push(line),
  });
  await stack.start();
  return stack;
}

test('a start lost to a taken port is started again, and the stack comes up', async () => {
  const fake = fakeTemporal(2, PORT_TAKEN);
  const status: string[] = [];
  const started = await startTemporal(fake.binary, status);
  expect(fake.starts()).toBe(3);
  expect(started.isRunning('temporal')).toBe(true);
  expect(status.filter((line) => line.endsWith('starting temporal again'))).toHaveLength(2);
  expect(status.some((line) => line.includes('address already in use'))).toBe(true);
  // The running process is the third start's, and its log section is that start's alone.
  expect(lastStartLog(started.logFile('temporal'))).toContain('started');
  expect(lastStartLog(started.logFile('temporal'))).not.toContain('address already in use');
});

test('a start that keeps losing the race fails after three starts, with the reason', async () => {
  const fake = fakeTemporal(10, PORT_TAKEN);
  const error = await startTemporal(fake.binary, []).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PartExitedError);
  expect((error as Error).message).toContain('address already in use');
  expect(fake.starts()).toBe(3);
});

test('any other exit during start fails at once', async () => {
  const fake = fakeTemporal(1, 'unable to open database file: permission denied');
  const error = await startTemporal(fake.binary, []).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PartExitedError);
  expect((error as Error).message).toContain('unable to open database file');
  expect(fake.starts()).toBe(1);
});

test('lostPortRace reads a start log for a taken port only', () => {
  expect(lostPortRace(`=== 2026-11-29 temporal server start-dev\n${PORT_TAKEN}\n`)).toBe(true);
  expect(lostPortRace('=== 2026-11-29 temporal server start-dev\nFATAL database is locked\n')).toBe(false);
});

test('lastStartLog gives the part of a log after its last start line', () => {
  const log = join(dir, 'part.log');
  writeFileSync(log, '\n=== first start\nold failure\n\n=== second start\nnew line\n');
  expect(lastStartLog(log)).toBe('=== second start\nnew line\n');
  expect(lastStartLog(join(dir, 'missing.log'))).toBe('');
});
