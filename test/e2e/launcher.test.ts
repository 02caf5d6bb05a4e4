/**
 * The launcher against the real stack the harness started: state survives a restart of
 * PostgreSQL and of Temporal, stopping a part takes its whole process group with it, and
 * a taken port stops a second launcher with one clear line.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { hasPart, readStackInfo, runningParts, startPart, stopPart, type StackInfo } from '../harness/stack';
import { eventually } from './helpers/wait';

jest.setTimeout(240_000);

const repoRoot = resolve(__dirname, '..', '..');

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function query<T>(info: StackInfo, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: info.urls.postgres, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

async function apiHealthStatus(info: StackInfo): Promise<number | undefined> {
  try {
    return (await fetch(`${info.apiUrl}/api-health`, { signal: AbortSignal.timeout(5000) })).status;
  } catch {
    return undefined;
  }
}


describe('the stack started by the harness', () => {
  const info = readStackInfo();

  test('wrote its ports, env and pids for the tests, and keeps the pids current', async () => {
    expect(info.parts).toEqual(expect.arrayContaining(['postgres', 'temporal', 'keycloak', 'maildev']));
    const running = await runningParts();
    expect(Object.keys(running).sort()).toEqual([...info.parts].sort());
    for (const part of info.parts) expect(alive(running[part] as number)).toBe(true);
    expect(readStackInfo().pids).toEqual(running);
    expect(info.env.execution.DATABASE_URL).toMatch(new RegExp(`:${info.ports.postgres}/gef_execution$`));
    expect(info.env.runner.DATABASE_URL).toBeUndefined();
    expect(info.env.gateway.PORT).toBe(String(info.ports.gateway));
  });

  test('Keycloak serves the gef realm and its client authenticates with the configured secret', async () => {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: info.keycloak.clientId, client_secret: info.keycloak.clientSecret });
    const response = await fetch(`${info.urls.keycloak}/realms/${info.keycloak.realm}/protocol/openid-connect/token`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    const token = (await response.json()) as { access_token: string; expires_in: number };
    // The realm's one-hour access tokens (a second boundary may pass between issue and answer).
    expect(token.expires_in).toBeGreaterThanOrEqual(3599);
    expect(token.expires_in).toBeLessThanOrEqual(3600);
    const claims = JSON.parse(Buffer.from(token.access_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud: string | string[] };
    expect([claims.aud].flat()).toContain('gef-api');
  });

  test('MailDev answers its REST API', async () => {
    const response = await fetch(`${info.urls.maildevWeb}/api/email`);
    expect(response.status).toBe(200);
    expect(Array.isArray(await response.json())).toBe(true);
  });

  test('PostgreSQL keeps its rows across stopPart + startPart', async () => {
    const marker = randomUUID();
    await query(info, 'CREATE TABLE IF NOT EXISTS launcher_probe (marker text PRIMARY KEY)');
    await query(info, 'INSERT INTO launcher_probe (marker) VALUES ($1)', [marker]);
    const oldPid = (await runningParts()).postgres as number;

    await stopPart('postgres');
    expect(alive(oldPid)).toBe(false);
    await expect(query(info, 'SELECT 1')).rejects.toThrow();
    if (hasPart('gateway')) await eventually(async () => (await apiHealthStatus(info)) === 503, 30_000, '/api-health 503 without PostgreSQL');

    await startPart('postgres');
    expect(readStackInfo().pids.postgres).not.toBe(oldPid);
    const rows = await query<{ marker: string }>(info, 'SELECT marker FROM launcher_probe WHERE marker = $1', [marker]);
    expect(rows).toEqual([{ marker }]);
    if (hasPart('gateway')) await eventually(async () => (await apiHealthStatus(info)) === 200, 60_000, '/api-health 200 again');
  });

  test('Temporal keeps its workflows across stopPart + startPart', async () => {
    const temporalHttp = `http://127.0.0.1:${info.ports.temporalHttp}/api/v1/namespaces/default/workflows`;
    const workflowId = `launcher-probe-${randomUUID()}`;
    const started = await fetch(`${temporalHttp}/${workflowId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflowId, workflowType: { name: 'launcherProbe' }, taskQueue: { name: 'launcher-probe' }, requestId: randomUUID() }),
    });
    expect(started.status).toBe(200);

    await stopPart('temporal');
    await expect(fetch(`${temporalHttp}/${workflowId}`)).rejects.toThrow();
    await startPart('temporal');

    const described = await fetch(`${temporalHttp}/${workflowId}`);
    expect(described.status).toBe(200);
    const body = (await described.json()) as { workflowExecutionInfo?: { type?: { name?: string }; status?: string } };
    expect(body.workflowExecutionInfo?.type?.name).toBe('launcherProbe');
    expect(body.workflowExecutionInfo?.status).toBe('WORKFLOW_EXECUTION_STATUS_RUNNING');
    // Leave nothing for a worker to find.
    await fetch(`${temporalHttp}/${workflowId}/terminate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  });
});

describe('a second launcher', () => {
  let blocker: Server;
  let blockedPort: number;
  let dataDir: string;

  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    blockedPort = (blocker.address() as { port: number }).port;
    dataDir = mkdtempSync(join(tmpdir(), 'gef-launcher-'));
  });

  afterAll(async () => {
    await new Promise((resolve) => blocker.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('stops with one clear line and exit code 1 when a port is taken, starting nothing', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'deploy', 'src', 'main.ts'), '--parts', 'infra'], {
      cwd: repoRoot,
      env: { ...process.env, GEF_DATA_DIR: dataDir, PG_PORT: String(blockedPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));

    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${blockedPort} (PG_PORT, postgres)`);
    expect(lines[0]).toMatch(/already in use/);
    expect(existsSync(join(dataDir, 'postgres'))).toBe(false);
  });
});
