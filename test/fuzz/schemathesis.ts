/**
 * Runs schemathesis (installed from PyPI into the tool cache, harness/python-venv.ts) against the
 * gateway of the running stack and reads its NDJSON report: how many requests were sent,
 * their statuses, and every failed check.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pythonVenv } from '../harness/python-venv';

/** The checks every response must pass. */
export const checks = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
] as const;

/** Installs schemathesis (SCHEMATHESIS_VERSION, default 4.32.5) if needed; resolves with the `st` command. */
export async function installSchemathesis(): Promise<string> {
  return join(await pythonVenv('schemathesis', [`schemathesis==${process.env['SCHEMATHESIS_VERSION'] ?? '4.32.5'}`]), 'bin', 'st');
}

export interface Failure {
  operation: string;
  check: string;
  title: string;
  message: string;
  request: string;
  status: number | undefined;
}

export interface FuzzRun {
  exitCode: number;
  /** Requests answered by the API. */
  requests: number;
  byStatus: Record<number, number>;
  byOperation: Record<string, number>;
  failures: Failure[];
  /** Network errors, timeouts and other errors schemathesis met. */
  errors: string[];
  /** The last lines schemathesis printed. */
  output: string;
  seconds: number;
}

export interface FuzzOptions {
  st: string;
  apiUrl: string;
  /** Extra environment for the hooks (hooks.py). */
  env: Record<string, string>;
  /** The body of a schemathesis.toml written for this run. */
  config: string;
  args: string[];
  label: string;
}

/** One `st run` against `<apiUrl>/swagger.json` with the suite's hooks. */
export async function runSchemathesis(options: FuzzOptions): Promise<FuzzRun> {
  const dir = mkdtempSync(join(tmpdir(), `gef-fuzz-${options.label}-`));
  const configFile = join(dir, 'schemathesis.toml');
  writeFileSync(configFile, options.config);
  const began = Date.now();
  const args = [
    '--config-file',
    configFile,
    'run',
    `${options.apiUrl}/swagger.json`,
    '--checks',
    checks.join(','),
    '--no-color',
    '--report',
    'ndjson',
    '--report-dir',
    dir,
    ...options.args,
  ];
  const output: string[] = [];
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(options.st, args, {
      // schemathesis keeps a cache in its working directory: not in the repository.
      cwd: dir,
      env: { ...process.env, ...options.env, PYTHONPATH: __dirname, SCHEMATHESIS_HOOKS: 'hooks', PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer): void => {
      output.push(chunk.toString('utf8'));
      if (output.length > 4000) output.splice(0, output.length - 4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const report = readdirSync(dir).find((f) => f.endsWith('.ndjson'));
  const run = report ? readReport(join(dir, report)) : { requests: 0, byStatus: {}, byOperation: {}, failures: [], errors: ['no NDJSON report'] };
  const text = output.join('');
  return { ...run, exitCode, output: text.slice(-6000), seconds: Math.round((Date.now() - began) / 1000) };
}

interface Interaction {
  request: { method: string; uri: string; body?: { $base64?: string; string?: string } };
  response?: { status_code: number } | null;
}

interface CheckResult {
  name: string;
  status: string;
  failure_info?: { failure?: { title?: string; message?: string } };
}

/** Reads schemathesis's NDJSON events. */
export function readReport(file: string): Pick<FuzzRun, 'requests' | 'byStatus' | 'byOperation' | 'failures' | 'errors'> {
  let requests = 0;
  const byStatus: Record<number, number> = {};
  const byOperation: Record<string, number> = {};
  const failures: Failure[] = [];
  const errors: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as Record<string, any>;
    if (event['NonFatalError']) errors.push(String(event['NonFatalError'].info?.message ?? JSON.stringify(event['NonFatalError']).slice(0, 500)));
    if (event['FatalError']) errors.push(String(JSON.stringify(event['FatalError']).slice(0, 1000)));
    const finished = event['ScenarioFinished'];
    if (!finished) continue;
    const recorder = finished.recorder as { label: string; interactions?: Record<string, Interaction>; checks?: Record<string, CheckResult[]> };
    for (const interaction of Object.values(recorder.interactions ?? {})) {
      if (!interaction.response) continue;
      requests++;
      byStatus[interaction.response.status_code] = (byStatus[interaction.response.status_code] ?? 0) + 1;
      byOperation[recorder.label] = (byOperation[recorder.label] ?? 0) + 1;
    }
    for (const [caseId, results] of Object.entries(recorder.checks ?? {})) {
      for (const result of results) {
        if (result.status !== 'failure') continue;
        const interaction = recorder.interactions?.[caseId];
        failures.push({
          operation: recorder.label,
          check: result.name,
          title: result.failure_info?.failure?.title ?? '',
          message: (result.failure_info?.failure?.message ?? '').slice(0, 600),
          request: interaction ? `${interaction.request.method} ${interaction.request.uri} ${bodyText(interaction).slice(0, 300)}` : '',
          status: interaction?.response?.status_code,
        });
      }
    }
  }
  return { requests, byStatus, byOperation, failures, errors };
}

function bodyText(interaction: Interaction): string {
  const body = interaction.request.body;
  if (!body) return '';
  if (body.string !== undefined) return body.string;
  if (body.$base64 !== undefined) return Buffer.from(body.$base64, 'base64').toString('utf8');
  return '';
}

/** A TOML string. */
export const toml = (value: string): string => JSON.stringify(value);

/** A TOML array of strings. */
export const tomlList = (values: readonly string[]): string => `[${values.map(toml).join(', ')}]`;
