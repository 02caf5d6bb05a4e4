import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, PartExitedError } from '../src/errors';
import { groupAlive, ManagedProcess, processAlive as alive } from '../src/process';
import { waitUntil } from '../src/wait';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gef-process-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));


test('output goes to the log file, and stop() ends the whole process group', async () => {
  const logFile = join(dir, 'logs', 'sh.log');
  // A parent that ignores TERM, with a grandchild: both must go.
  const proc = ManagedProcess.spawn({
    name: 'sh',
    command: '/bin/sh',
    args: ['-c', 'trap "" TERM; echo hello; sleep 300 & echo "child $!"; wait'],
    cwd: dir,
    env: { PATH: process.env.PATH },
    logFile,
  });
  await waitUntil(async () => /child \d+/.test(readFileSync(logFile, 'utf8')), { what: 'sh', timeoutMs: 5000, process: proc });
  const grandchild = Number(/child (\d+)/.exec(readFileSync(logFile, 'utf8'))?.[1]);
  expect(readFileSync(logFile, 'utf8')).toContain('hello');
  expect(alive(grandchild)).toBe(true);

  const began = Date.now();
  await proc.stop(500);
  expect(Date.now() - began).toBeGreaterThanOrEqual(400);
  expect(proc.running).toBe(false);
  expect(alive(grandchild)).toBe(false);
  expect(groupAlive(proc.pid)).toBe(false);
});

test('waiting on a process that exits fails at once with the part, its last log line and its log file', async () => {
  const logFile = join(dir, 'quick.log');
  const proc = ManagedProcess.spawn({ name: 'quick', command: '/bin/sh', args: ['-c', 'echo boom; exit 3'], cwd: dir, env: {}, logFile });
  const began = Date.now();
  const error = await waitUntil(async () => false, { what: 'quick', timeoutMs: 30_000, process: proc }).catch((e: unknown) => e);
  expect(Date.now() - began).toBeLessThan(5000);
  expect(error).toBeInstanceOf(PartExitedError);
  expect((error as Error).message).toBe(`quick exited during start (code 3): boom; see ${logFile}`);
});

test('a command that cannot run is a LaunchError naming it', () => {
  const command = join(dir, 'no-such-binary');
  expect(() => ManagedProcess.spawn({ name: 'missing', command, args: [], cwd: dir, env: {}, logFile: join(dir, 'missing.log') })).toThrow(
    new LaunchError(`could not start missing: ${command} cannot be run`),
  );
});

test('a child does not outlive a launcher that is killed outright', async () => {
  const helper = join(dir, 'parent.ts');
  writeFileSync(
    helper,
    `import { ManagedProcess } from ${JSON.stringify(join(__dirname, '..', 'src', 'process'))};
const child = ManagedProcess.spawn({ name: 'sleep', command: '/bin/sleep', args: ['300'], cwd: '/', env: {}, logFile: ${JSON.stringify(join(dir, 'sleep.log'))} });
console.log(child.pid);
setInterval(() => undefined, 1000);
`,
  );
  const parent = spawn(process.execPath, ['--import', 'tsx', helper], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  const childPid = await new Promise<number>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
  expect(alive(childPid)).toBe(true);
  parent.kill('SIGKILL');
  await waitUntil(async () => !alive(childPid), { what: 'the orphan to go', timeoutMs: 5000, intervalMs: 50 });
});
