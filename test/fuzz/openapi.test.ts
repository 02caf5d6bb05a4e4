/**
 * Fuzzing from the OpenAPI spec (issue 6, "Hostile input"): schemathesis reads
 * /swagger.json from the running stack and sends what it generates from it — valid and
 * invalid parameters and bodies, boundary values, wrong methods and media types, chains of
 * calls linked by the ids the API returns — as a USER and as an ADMIN, two runs side by
 * side. Every response must be free of 5xx and match the spec: status code, content type,
 * headers and body schema (`checks` in schemathesis.ts).
 *
 * The runs reach the API's logic, not only its 404s: path parameters are drawn part of the
 * time from dictionaries of real objects made beforehand (public, private and own scripts,
 * own and foreign executions, users), and DELETE routes get their own throwaway scripts and
 * users. Fuzzed requests that end the fuzzing user's session (logout, logout-all, deleting
 * itself) are answered by hooks.py, which replaces the user and carries on.
 *
 * FUZZ_MAX_EXAMPLES (default 40) sets the cases per operation and phase; FUZZ_SEED makes a
 * run reproducible (schemathesis prints its seed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiUrl, api, login, newUser, strongPassword, superadminCredentials, uniqueEmail } from '../e2e/helpers/api';
import { cliArchive, upload } from '../e2e/helpers/archives';
import { publishScript, runScript, waitForExecution } from '../e2e/helpers/executions';
import { installSchemathesis, runSchemathesis, toml, tomlList, type FuzzRun } from './schemathesis';

jest.setTimeout(30 * 60_000);

/** The suite's promise: at least this many requests fuzzed over both runs. */
const minimumRequests = 5000;
const maxExamples = Number(process.env['FUZZ_MAX_EXAMPLES'] ?? 40);

const unique = () => randomBytes(4).toString('hex');

interface Account {
  id: string;
  email: string;
  token: string;
}

interface Fixtures {
  scripts: string[];
  executions: string[];
  users: string[];
  victimScripts: string[];
  victimUsers: string[];
}

let st: string;
let superToken: string;
const runs: Record<string, FuzzRun> = {};

/** A script that returns its params, built and published or private. */
async function script(owner: Account, visibility: 'public' | 'private', config: Record<string, unknown> = {}): Promise<{ id: string; slug: string }> {
  const made = await publishScript(owner.token, `fuzz ${visibility} ${unique()}`, 'def run(params, logger):\n    logger.info("fuzzed")\n    return {"params": params}\n', config);
  if (visibility === 'public') {
    const res = await api('POST', `/api/v1/script/${made.id}/publish`, { token: owner.token });
    if (res.status !== 200) throw new Error(`publish: ${res.status} ${res.text}`);
  }
  return made;
}

/** Scripts uploaded only to be deleted (their builds need not finish). */
async function victimScripts(owner: Account, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await upload(owner.token, cliArchive(`fuzz victim ${unique()}`), 'victim.tar.gz');
    if (res.status !== 200) throw new Error(`upload: ${res.status} ${res.text}`);
    ids.push(res.body.data.id, res.body.data.slug);
  }
  return ids;
}

async function victimUsers(count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const user = await newUser('fuzz-victim');
    keys.push(i % 2 === 0 ? user.id : user.email);
  }
  return keys;
}

async function account(role: 'USER' | 'ADMIN'): Promise<Account> {
  const email = uniqueEmail(`fuzz-${role.toLowerCase()}`);
  const created = await api('POST', '/api/v1/user', { token: superToken, body: { email, name: `Fuzzing ${role}`, password: strongPassword, role } });
  if (created.status !== 200) throw new Error(`registration: ${created.status} ${created.text}`);
  return { id: created.body.data.id, email, token: (await login(email, strongPassword)).access_token };
}

/** Runs a script to its end; returns the execution id. */
async function finishedRun(owner: Account, scriptId: string): Promise<string> {
  const execution = await runScript(owner.token, scriptId, { body: { area: 'fuzz' } });
  await waitForExecution(owner.token, execution.id);
  return execution.id;
}

/** The schemathesis.toml of one run: workers, phases, and where path parameters come from. */
function config(fixtures: Fixtures): string {
  const bind = (name: string, dictionary: string, probability: number) => `"path.${name}" = { dictionary = ${toml(dictionary)}, probability = ${probability} }`;
  return [
    'workers = 1',
    'request-timeout = 30',
    'continue-on-failure = true',
    '',
    '[generation]',
    `max-examples = ${maxExamples}`,
    'database = "none"',
    '',
    '[parameters]',
    bind('script', 'scripts', 0.6),
    bind('execution', 'executions', 0.6),
    bind('user', 'users', 0.5),
    '',
    '[dictionaries.scripts]',
    `values = ${tomlList(fixtures.scripts)}`,
    '[dictionaries.executions]',
    `values = ${tomlList(fixtures.executions)}`,
    '[dictionaries.users]',
    `values = ${tomlList(fixtures.users)}`,
    '[dictionaries.victim_scripts]',
    `values = ${tomlList(fixtures.victimScripts)}`,
    '[dictionaries.victim_users]',
    `values = ${tomlList(fixtures.victimUsers)}`,
    '',
    // DELETE takes its own objects: the shared ones stay for the rest of the run.
    '[[operations]]',
    'include-name = "DELETE /api/v1/script/{script}"',
    'parameters = { "path.script" = { dictionary = "victim_scripts", probability = 0.6 } }',
    '',
    '[[operations]]',
    'include-name = "DELETE /api/v1/user/{user}"',
    'parameters = { "path.user" = { dictionary = "victim_users", probability = 0.6 } }',
    '',
  ].join('\n');
}

async function fuzz(label: string, role: 'USER' | 'ADMIN', fuzzer: Account, fixtures: Fixtures): Promise<FuzzRun> {
  const dir = mkdtempSync(join(tmpdir(), `gef-fuzz-users-${label}-`));
  const usersFile = join(dir, 'users.jsonl');
  const superadmin = superadminCredentials();
  const run = await runSchemathesis({
    st,
    apiUrl: apiUrl(),
    label,
    config: config(fixtures),
    env: {
      GEF_FUZZ_API_URL: apiUrl(),
      GEF_FUZZ_ROLE: role,
      GEF_FUZZ_TOKEN: fuzzer.token,
      GEF_FUZZ_SUPERADMIN_EMAIL: superadmin.email,
      GEF_FUZZ_SUPERADMIN_PASSWORD: superadmin.password,
      GEF_FUZZ_USERS_FILE: usersFile,
    },
    args: process.env['FUZZ_SEED'] ? ['--seed', process.env['FUZZ_SEED']] : [],
  });
  const replaced = existsSync(usersFile) ? readFileSync(usersFile, 'utf8').trim().split('\n').filter(Boolean).length : 0;
  process.stderr.write(
    `[fuzz] ${label}: ${run.requests} requests in ${run.seconds} s, exit ${run.exitCode}, ${run.failures.length} failed checks, ` +
      `${run.errors.length} errors, fuzzing user replaced ${replaced} times; statuses ${JSON.stringify(run.byStatus)}\n`,
  );
  return run;
}

/** What a failed run shows: each distinct failure once, then schemathesis's own summary. */
function explain(run: FuzzRun): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const f of run.failures) {
    const key = `${f.operation} ${f.check} ${f.title}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`${f.operation} [${f.check}] ${f.title} (status ${f.status})\n  ${f.message.replace(/\n/g, '\n  ')}\n  request: ${f.request}`);
  }
  return `${lines.join('\n\n')}\n\nerrors: ${run.errors.join('\n')}\n\n${run.output}`;
}

beforeAll(async () => {
  st = await installSchemathesis();
  const superadmin = superadminCredentials();
  superToken = (await login(superadmin.email, superadmin.password, 120_000)).access_token;
}, 15 * 60_000);

describe('OpenAPI fuzzing with schemathesis', () => {
  test('as a USER and as an ADMIN (side by side): no 5xx, every response as the spec says', async () => {
    // Objects of a third user: a public script (with a params schema) and a private one, a run.
    const stranger = await account('USER');
    const publicScript = await script(stranger, 'public', { params_schema: { type: 'object', properties: { area: { type: 'string' } } } });
    const privateScript = await script(stranger, 'private');
    const strangerRun = await finishedRun(stranger, publicScript.id);

    // The USER's own objects; the ADMIN's own run of the public script.
    const user = await account('USER');
    const admin = await account('ADMIN');
    const ownScript = await script(user, 'private');
    const ownRuns = [await finishedRun(user, ownScript.id), await finishedRun(user, publicScript.id)];
    const adminRun = await finishedRun(admin, privateScript.id);

    const scripts = [publicScript.id, publicScript.slug, privateScript.id, privateScript.slug, ownScript.id, ownScript.slug];
    const executions = [...ownRuns, strangerRun, adminRun];
    const users = [stranger.id, stranger.email, user.id, admin.id];
    const [userVictims, adminVictims] = [await victimScripts(user, 3), await victimScripts(stranger, 3)];
    const [userVictimUsers, adminVictimUsers] = [await victimUsers(2), await victimUsers(3)];

    // Two processes (schemathesis's own worker threads are not reliable on Python 3.11).
    const [userRun, adminRun_] = await Promise.all([
      fuzz('user', 'USER', user, { scripts, executions, users, victimScripts: userVictims, victimUsers: userVictimUsers }),
      fuzz('admin', 'ADMIN', admin, { scripts, executions, users, victimScripts: adminVictims, victimUsers: adminVictimUsers }),
    ]);
    runs['user'] = userRun;
    runs['admin'] = adminRun_;

    for (const run of [userRun, adminRun_]) {
      if (run.failures.length > 0 || run.errors.length > 0 || run.exitCode !== 0) throw new Error(explain(run));
      // Failing checks are what the exit code says; the report must agree.
      expect(run.byStatus[500] ?? 0).toBe(0);
      expect(Object.keys(run.byStatus).filter((s) => Number(s) >= 500)).toEqual([]);
    }
    const total = userRun.requests + adminRun_.requests;
    process.stderr.write(`[fuzz] ${total} requests in all\n`);
    expect(total).toBeGreaterThanOrEqual(minimumRequests);
    // Both roles reached the routes behind authentication with real objects.
    for (const run of [userRun, adminRun_]) {
      expect(run.byStatus[200] ?? 0).toBeGreaterThan(100);
      expect(Object.keys(run.byOperation).length).toBeGreaterThanOrEqual(35);
    }
  });
});
