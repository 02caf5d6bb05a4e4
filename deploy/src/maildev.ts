import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StackConfig } from './config';
import type { Launched } from './launched';
import { ManagedProcess } from './process';
import { httpOk, waitUntil } from './wait';

export function maildevArgs(config: StackConfig, script: string): string[] {
  const { ports } = config;
  return [
    script,
    '--smtp',
    String(ports.maildevSmtp),
    '--ip',
    '127.0.0.1',
    '--web',
    String(ports.maildevWeb),
    '--web-ip',
    '127.0.0.1',
    '--mail-directory',
    join(config.dataDir, 'maildev'),
  ];
}

/** Starts MailDev (SMTP + web UI + REST API); ready when GET /api/email answers. */
export function launchMaildev(config: StackConfig, script: string, timeoutMs = 60_000): Launched {
  mkdirSync(join(config.dataDir, 'maildev'), { recursive: true });
  const proc = ManagedProcess.spawn({
    name: 'maildev',
    command: process.execPath,
    args: maildevArgs(config, script),
    cwd: config.dataDir,
    env: { ...config.baseEnv },
    logFile: join(config.logDir, 'maildev.log'),
  });
  // MailDev 3 serves its REST API under /api (v2 had it at the root).
  const url = `http://127.0.0.1:${config.ports.maildevWeb}/api/email`;
  const ready = waitUntil(() => httpOk(url), { what: 'maildev', timeoutMs, process: proc });
  return { proc, ready };
}
