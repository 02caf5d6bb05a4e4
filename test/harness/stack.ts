/**
 * What end-to-end tests know about the stack the harness started (test/harness/global-setup.ts):
 * read the JSON file it wrote, and stop or start one part through its control server.
 * globalSetup runs in another context than the test files, hence the file and the server.
 */
import { readFileSync } from 'node:fs';

export type PartName = 'postgres' | 'temporal' | 'keycloak' | 'maildev' | 'user' | 'script' | 'execution' | 'runner' | 'gateway';
export type ServiceName = 'user' | 'script' | 'execution' | 'runner' | 'gateway';

export interface StackInfo {
  /** Gateway base URL, e.g. http://127.0.0.1:41234 (also in GEF_TEST_API_URL). */
  apiUrl: string;
  urls: Record<string, string>;
  ports: Record<string, number>;
  /** What each service gets from the launcher: DATABASE_URL, KEYCLOAK_*, ... */
  env: Record<ServiceName, Record<string, string>>;
  pids: Partial<Record<PartName, number>>;
  parts: PartName[];
  dataDir: string;
  logDir: string;
  /** Base URL of the harness's control server. */
  controlUrl: string;
  /** Milliseconds each part took to become ready, and the whole start. */
  timings: Record<string, number>;
  keycloak: { realm: string; clientId: string; clientSecret: string; admin: string; adminPassword: string };
}

export function stackFile(): string {
  const file = process.env.GEF_TEST_STACK_FILE;
  if (!file) throw new Error('GEF_TEST_STACK_FILE is not set: run the e2e project, whose globalSetup starts the stack');
  return file;
}

export function readStackInfo(): StackInfo {
  return JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo;
}

/** The gateway's base URL. */
export function apiUrl(): string {
  return process.env.GEF_TEST_API_URL ?? readStackInfo().apiUrl;
}

/** Whether the harness started this part (GEF_TEST_PARTS may limit it to infrastructure). */
/** Where the e2e harness makes the tests' gates; undefined outside it (faults suites). */
export function gatesDir(): string | undefined {
  return process.env.GEF_TEST_GATES_DIR;
}

export function hasPart(part: PartName): boolean {
  return readStackInfo().parts.includes(part);
}

async function control(path: string, method: 'GET' | 'POST'): Promise<unknown> {
  const response = await fetch(`${readStackInfo().controlUrl}${path}`, { method });
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(`stack control ${method} ${path}: ${body.error ?? response.status}`);
  return body;
}

/** Stops one part (its whole process group) and waits until it is gone. */
export async function stopPart(part: PartName): Promise<void> {
  await control(`/parts/${part}/stop`, 'POST');
}

/** Kills one part at once (SIGKILL to its process group, as a crash would) and waits until it is gone. */
export async function killPart(part: PartName): Promise<void> {
  await control(`/parts/${part}/kill`, 'POST');
}

/** Starts a stopped part again on the same ports and waits until it is ready. */
export async function startPart(part: PartName): Promise<void> {
  await control(`/parts/${part}/start`, 'POST');
}

/** The running parts and their process ids. */
export async function runningParts(): Promise<Partial<Record<PartName, number>>> {
  return ((await control('/parts', 'GET')) as { pids: Partial<Record<PartName, number>> }).pids;
}
