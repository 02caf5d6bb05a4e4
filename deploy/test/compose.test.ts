/**
 * docker-compose.yml and deploy/Dockerfile, checked without a Docker engine: the compose
 * file against the services' configuration schemas (services/<name>/src/config.ts), the
 * ports and URLs between services, the images, and the Dockerfile against the workspaces.
 * Each check returns a list of problems, so the tests below can also feed it broken input.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { launcherExport, loadRunnerCapabilities, loadWorkspaces, processWorkspaceDirs, ROOT, runnerNeeds, sampleFor, SECRET_KEYS, type FieldSchema, type RunnerCapabilities, type Workspace } from './support/workspaces';
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const DOCKERFILE = 'deploy/Dockerfile';
const INIT_SCRIPT = join(ROOT, 'deploy', 'docker', 'postgres', 'init-databases.sh');
const REALM_FILE = join(ROOT, 'deploy', 'keycloak', 'gef-realm.json');


// --- compose variable interpolation -----------------------------------------------------

export interface Resolved {
  value: string;
  /** Variables written ${VAR:?…} or ${VAR?…}: compose refuses to start without them. */
  required: string[];
  /** Whether a literal default (${VAR:-…}) or a plain ${VAR} supplied part of the value. */
  defaulted: boolean;
}


/**
 * Resolves compose interpolation as if no variable were set: `$$` → `$`, `${V:-d}` and
 * `${V-d}` → d, `${V:?m}` and `${V?m}` → a sample value (and V is recorded as required),
 * `${V}` and `$V` → empty.
 */
export function interpolate(raw: string): Resolved {
  const required: string[] = [];
  let defaulted = false;
  const pattern = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
  const value = raw.replace(pattern, (match: string, name?: string, op?: string, arg?: string, bare?: string) => {
    if (match === '$$') return '$';
    if (bare !== undefined) {
      defaulted = true;
      return '';
    }
    if (op?.endsWith('?')) {
      required.push(name!);
      return sampleFor(name!);
    }
    defaulted = true;
    return op?.endsWith('-') ? (arg ?? '') : '';
  });
  return { value, required, defaulted };
}

// --- reading a compose file -------------------------------------------------------------

interface ComposeService {
  build?: string | { context?: string; dockerfile?: string; args?: Record<string, string> | string[] };
  image?: string;
  environment?: Record<string, unknown> | string[];
  ports?: unknown[];
  expose?: unknown[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: unknown[];
  user?: string | number;
  cap_add?: string[];
  cap_drop?: string[];
}

interface Compose {
  services?: Record<string, ComposeService>;
}

export function parseCompose(text: string): Compose {
  return parse(text, { merge: true }) as Compose;
}

function listToMap(entries: Record<string, unknown> | string[] | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  if (Array.isArray(entries)) {
    for (const entry of entries) {
      const at = entry.indexOf('=');
      if (at > 0) map[entry.slice(0, at)] = entry.slice(at + 1);
    }
  } else if (entries) {
    for (const [key, value] of Object.entries(entries)) map[key] = value === null || value === undefined ? '' : String(value);
  }
  return map;
}

/** The service's environment as written (unresolved). */
function environmentOf(service: ComposeService): Record<string, string> {
  return listToMap(service.environment);
}

function buildArgs(service: ComposeService): Record<string, string> {
  return typeof service.build === 'object' ? listToMap(service.build.args) : {};
}

/** Services built from deploy/Dockerfile, with the workspace their SERVICE argument picks. */
function ourServices(compose: Compose): Map<string, { service: ComposeService; workspace: string | undefined }> {
  const ours = new Map<string, { service: ComposeService; workspace: string | undefined }>();
  for (const [name, service] of Object.entries(compose.services ?? {})) {
    const build = service.build;
    if (typeof build !== 'object') continue;
    const dockerfile = posix.normalize(posix.join(build.context ?? '.', build.dockerfile ?? 'Dockerfile'));
    if (dockerfile !== DOCKERFILE) continue;
    ours.set(name, { service, workspace: buildArgs(service)['SERVICE'] });
  }
  return ours;
}

/** Container-side ports of `ports` (short or long syntax) and `expose`. */
function containerPorts(service: ComposeService): { published: number[]; exposed: number[]; problems: string[] } {
  const problems: string[] = [];
  const toPort = (value: unknown): number | undefined => {
    if (typeof value === 'number') return value;
    if (typeof value === 'object' && value !== null && 'target' in value) return Number((value as { target: unknown }).target);
    if (typeof value !== 'string') return undefined;
    const target = interpolate(value).value.split('/')[0]!.split(':').pop()!;
    return /^\d+$/.test(target) ? Number(target) : undefined;
  };
  const collect = (entries: unknown[] | undefined): number[] =>
    (entries ?? []).flatMap((entry) => {
      const port = toPort(entry);
      if (port === undefined) {
        problems.push(`cannot read the port ${JSON.stringify(entry)}`);
        return [];
      }
      return [port];
    });
  return { published: collect(service.ports), exposed: collect(service.expose), problems };
}

/** http://127.0.0.1:<port><path> URLs the healthcheck calls. */
function healthcheckTargets(service: ComposeService): { port: number; path: string }[] {
  const test = service.healthcheck?.test;
  const text = Array.isArray(test) ? test.join(' ') : (test ?? '');
  const targets: { port: number; path: string }[] = [];
  for (const m of text.matchAll(/https?:\/\/(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):(\d+)(\/[^\s"']*)?/g)) {
    targets.push({ port: Number(m[1]), path: m[2] ?? '/' });
  }
  return targets;
}

function dependsOn(service: ComposeService): Map<string, string | undefined> {
  const deps = new Map<string, string | undefined>();
  if (Array.isArray(service.depends_on)) service.depends_on.forEach((name) => deps.set(name, undefined));
  else for (const [name, spec] of Object.entries(service.depends_on ?? {})) deps.set(name, spec?.condition);
  return deps;
}

function volumeTargets(service: ComposeService): string[] {
  return (service.volumes ?? []).flatMap((volume) => {
    if (typeof volume === 'string') {
      const parts = volume.split(':');
      return parts.length >= 2 ? [parts[1]!] : [parts[0]!];
    }
    if (typeof volume === 'object' && volume !== null && 'target' in volume) return [String((volume as { target: unknown }).target)];
    return [];
  });
}

/** host:port of a URL or of a bare `host:port` (TEMPORAL_ADDRESS). */
function hostAndPort(value: string): { host: string; port: number | undefined; url: URL | undefined } | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      const url = new URL(value);
      const defaults: Record<string, number> = { 'http:': 80, 'https:': 443, 'postgres:': 5432, 'postgresql:': 5432 };
      return { host: url.hostname, port: url.port ? Number(url.port) : defaults[url.protocol], url };
    } catch {
      return undefined;
    }
  }
  const m = /^([A-Za-z0-9.-]+):(\d+)$/.exec(value);
  return m ? { host: m[1]!, port: Number(m[2]), url: undefined } : undefined;
}

/** Databases the init script creates, with their owner: `create_database <db> <owner>`. */
export function databasesCreatedBy(initScript: string): Map<string, string> {
  const created = new Map<string, string>();
  for (const m of initScript.matchAll(/^\s*create_database\s+(\S+)\s+(\S+)\s*$/gm)) created.set(m[1]!, m[2]!);
  return created;
}

// --- the compose checks -------------------------------------------------------------------

export interface ComposeContext {
  /** Process workspaces by name (services/<name>). */
  workspaces: Map<string, Workspace>;
  /** Databases the PostgreSQL init script creates, with their owners. */
  databases: Map<string, string>;
  /** The capabilities the runner's sandbox needs. */
  runnerCapabilities: RunnerCapabilities;
}

/** Everything wrong with a compose file, as sentences naming the service and variable. */
export function checkCompose(compose: Compose, ctx: ComposeContext): string[] {
  const problems: string[] = [];
  const services = compose.services;
  if (!services || typeof services !== 'object' || Object.keys(services).length === 0) return ['the compose file has no services'];

  // Every image pinned.
  for (const [name, service] of Object.entries(services)) {
    if (service.image === undefined) {
      if (service.build === undefined) problems.push(`${name}: neither image nor build`);
      continue;
    }
    const image = interpolate(service.image).value;
    const digest = image.includes('@sha256:');
    const lastSegment = image.split('/').pop() ?? '';
    const tag = lastSegment.includes(':') ? lastSegment.split(':').pop() : undefined;
    if (!digest && (tag === undefined || tag === '')) problems.push(`${name}: image ${image} has no tag`);
    if (tag === 'latest') problems.push(`${name}: image ${image} is not pinned (latest)`);
  }

  const ours = ourServices(compose);
  const byWorkspace = new Map<string, string>();
  for (const [name, { workspace }] of ours) if (workspace) byWorkspace.set(workspace, name);
  for (const workspace of ctx.workspaces.keys()) {
    if (!byWorkspace.has(workspace)) problems.push(`services/${workspace} has no compose service built from ${DOCKERFILE}`);
  }

  /** A compose service's resolved environment. */
  const resolvedEnv = (service: ComposeService): Record<string, string> =>
    Object.fromEntries(Object.entries(environmentOf(service)).map(([k, v]) => [k, interpolate(v).value]));
  /** The ports a compose service declares (published or exposed), to check URLs against. */
  const declaredPorts = (service: ComposeService): number[] => {
    const { published, exposed } = containerPorts(service);
    return [...published, ...exposed];
  };

  for (const [name, { service, workspace: workspaceName }] of ours) {
    const where = `${name}`;
    if (!workspaceName) {
      problems.push(`${where}: build argument SERVICE is not set`);
      continue;
    }
    const workspace = ctx.workspaces.get(workspaceName);
    if (!workspace) {
      problems.push(`${where}: SERVICE=${workspaceName} is not a process workspace (services/${workspaceName})`);
      continue;
    }
    if (!workspace.hasEntry) problems.push(`${where}: services/${workspaceName}/src/main.ts does not exist`);
    const shape = workspace.shape;
    if (!shape) {
      problems.push(`${where}: services/${workspaceName}/src/config.ts exports no configuration shape`);
      continue;
    }
    const rawEnv = environmentOf(service);
    const env = resolvedEnv(service);

    // Variables: known to the schema, valid, required ones present, production mode.
    for (const key of Object.keys(rawEnv)) {
      // Node's own settings, read by node rather than by the service.
      if (key === 'NODE_OPTIONS') continue;
      const field = shape[key];
      if (!field) {
        problems.push(`${where}: ${key} is not a configuration variable of services/${workspaceName}`);
        continue;
      }
      const value = env[key]!;
      // The process treats an empty value as unset.
      if (!field.safeParse(value === '' ? undefined : value).success) problems.push(`${where}: ${key}=${value} is refused by its schema`);
    }
    for (const [key, field] of Object.entries(shape)) {
      if (!(key in rawEnv) && !field.safeParse(undefined).success) problems.push(`${where}: ${key} is required by services/${workspaceName} but not set`);
    }
    if (env['GEF_ENV'] !== 'production') problems.push(`${where}: GEF_ENV must be production (is ${env['GEF_ENV'] ?? 'unset'})`);

    // Secrets: only from required variables, never a literal or a default; an optional one
    // (the schema takes it unset) from its own variable, empty unless given.
    for (const key of SECRET_KEYS) {
      if (!(key in shape)) continue;
      const raw = rawEnv[key];
      const optional = shape[key]!.safeParse(undefined);
      if (raw === `\${${key}:-}` && optional.success && optional.data === undefined) continue;
      if (raw === undefined) problems.push(`${where}: ${key} must be set from a required variable (\${VAR:?})`);
      else {
        const r = interpolate(raw);
        if (r.required.length === 0 || r.defaulted || r.value !== sampleFor(r.required[0]!)) {
          problems.push(`${where}: ${key} must come from a required variable alone (\${VAR:?}), not ${raw}`);
        }
      }
    }

    // Ports: PORT/METRICS_PORT set, as documented (the schema defaults), and the only ones used.
    const portOf = (key: 'PORT' | 'METRICS_PORT'): number | undefined => {
      if (!(key in shape)) return undefined;
      const raw = env[key];
      const documented = shape[key]!.safeParse(undefined).data;
      if (raw === undefined || raw === '') {
        problems.push(`${where}: ${key} is not set`);
        return undefined;
      }
      const port = Number(raw);
      if (port !== documented) problems.push(`${where}: ${key}=${raw} differs from the documented ${String(documented)}`);
      return port;
    };
    const port = portOf('PORT');
    const metricsPort = portOf('METRICS_PORT');
    const allowed = [port, metricsPort].filter((p): p is number => p !== undefined);
    const { published, exposed, problems: portProblems } = containerPorts(service);
    portProblems.forEach((p) => problems.push(`${where}: ${p}`));
    for (const p of [...published, ...exposed]) {
      if (!allowed.includes(p)) problems.push(`${where}: port ${p} is neither PORT nor METRICS_PORT (${allowed.join(', ') || 'none'})`);
    }
    // The REST front (no METRICS_PORT) is published; internal RPC and metrics ports are not.
    const isFront = !('METRICS_PORT' in shape);
    if (isFront && port !== undefined && !published.includes(port)) problems.push(`${where}: PORT ${port} is not published`);
    if (!isFront && published.length > 0) problems.push(`${where}: publishes ${published.join(', ')}; internal ports belong in expose`);

    // Healthcheck (what dependants wait for): /readyz on METRICS_PORT, or /api-health on the front's PORT.
    const targets = healthcheckTargets(service);
    const wanted = isFront ? { port, path: '/api-health' } : { port: metricsPort, path: '/readyz' };
    if (service.healthcheck === undefined || service.healthcheck.disable) problems.push(`${where}: no healthcheck`);
    else if (targets.length === 0) problems.push(`${where}: the healthcheck calls no local URL`);
    for (const t of targets) {
      if (t.port !== wanted.port || t.path !== wanted.path) {
        problems.push(`${where}: the healthcheck calls :${t.port}${t.path}, expected :${String(wanted.port)}${wanted.path}`);
      }
    }

    // Addresses of other parts: compose service names, right ports, and waited for.
    const deps = dependsOn(service);
    const referenced = new Set<string>();
    const checkAddress = (key: string, value: string): ReturnType<typeof hostAndPort> => {
      const target = hostAndPort(value);
      if (!target) {
        problems.push(`${where}: ${key}=${value} is not an address`);
        return undefined;
      }
      const other = services[target.host];
      if (!other) {
        problems.push(`${where}: ${key} points at ${target.host}, which is not a compose service`);
        return undefined;
      }
      referenced.add(target.host);
      if (target.port === undefined || !declaredPorts(other).includes(target.port)) {
        problems.push(`${where}: ${key} uses port ${String(target.port)}, which ${target.host} does not declare`);
      }
      return target;
    };
    for (const [key, value] of Object.entries(env)) {
      const serviceUrl = /^([A-Z]+)_SERVICE_URL$/.exec(key);
      if (serviceUrl) {
        const targetWorkspace = serviceUrl[1]!.toLowerCase();
        const target = checkAddress(key, value);
        if (!target) continue;
        const expectedHost = byWorkspace.get(targetWorkspace);
        if (target.host !== expectedHost) {
          problems.push(`${where}: ${key} points at ${target.host}, but services/${targetWorkspace} runs as ${expectedHost ?? 'nothing'}`);
          continue;
        }
        const targetPort = resolvedEnv(services[target.host]!)['PORT'];
        if (String(target.port) !== targetPort) problems.push(`${where}: ${key} uses port ${String(target.port)}, but ${target.host} listens on PORT ${targetPort ?? 'unset'}`);
        if (target.url?.protocol !== 'http:') problems.push(`${where}: ${key} must be http:// (h2c inside the network)`);
      } else if (key === 'DATABASE_URL') {
        const target = checkAddress(key, value);
        if (!target?.url) continue;
        const database = target.url.pathname.replace(/^\//, '');
        const role = decodeURIComponent(target.url.username);
        if (database !== `gef_${workspaceName}`) problems.push(`${where}: DATABASE_URL names ${database}, expected gef_${workspaceName}`);
        const owner = ctx.databases.get(database);
        if (owner === undefined) problems.push(`${where}: the init script creates no database ${database}`);
        else if (owner !== role) problems.push(`${where}: DATABASE_URL logs in as ${role}, but ${database} belongs to ${owner}`);
        if (interpolate(rawEnv[key]!).required.length === 0) problems.push(`${where}: DATABASE_URL carries no required password variable`);
      } else if (key === 'TEMPORAL_ADDRESS' || key === 'KEYCLOAK_URL') {
        checkAddress(key, value);
      } else if (key === 'SMTP_HOST') {
        checkAddress(key, `${value}:${env['SMTP_PORT'] ?? String(shape['SMTP_PORT']?.safeParse(undefined).data)}`);
      }
    }
    for (const host of referenced) {
      if (!deps.has(host)) {
        problems.push(`${where}: does not wait for ${host} (depends_on)`);
        continue;
      }
      const condition = deps.get(host);
      if (services[host]!.healthcheck && condition !== 'service_healthy') {
        problems.push(`${where}: waits for ${host} with ${condition ?? 'no condition'}, not service_healthy`);
      }
    }
    for (const [dep, condition] of deps) {
      if (!services[dep]) problems.push(`${where}: depends on ${dep}, which is not a compose service`);
      if (condition === undefined) problems.push(`${where}: depends on ${dep} without a condition`);
    }

    // Data that must outlive the container sits on a volume.
    const dataDir = env['GEF_DATA_DIR'];
    if (dataDir !== undefined && !volumeTargets(service).includes(dataDir)) problems.push(`${where}: GEF_DATA_DIR ${dataDir} is not a volume`);

    if (workspaceName === 'runner') problems.push(...checkRunner(where, service, env, ctx.runnerCapabilities, checkAddress));
  }
  return problems;
}

/** Docker's default capabilities (what a container keeps without cap_drop). */
const dockerDefaultCapabilities = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_RAW', 'SYS_CHROOT', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP'];

/**
 * The runner in production gives each run a user of its own (it refuses to start
 * otherwise): root in its container (the image's default user is unprivileged), the
 * capabilities that takes, and an API_URL that scripts can reach inside the network.
 */
function checkRunner(
  where: string,
  service: ComposeService,
  env: Record<string, string>,
  capabilities: ComposeContext['runnerCapabilities'],
  checkAddress: (key: string, value: string) => unknown,
): string[] {
  const problems: string[] = [];
  if (env['SANDBOX'] === 'off') problems.push(`${where}: SANDBOX=off runs scripts as the runner itself`);
  const user = service.user === undefined ? undefined : String(service.user);
  if (user === undefined || !/^(root|0)(:(root|0))?$/.test(user)) {
    problems.push(`${where}: runs as ${user ?? "the image's unprivileged user"}; the sandbox needs root in the container (user: root)`);
  }
  const upper = (list: string[] | undefined) => (list ?? []).map((c) => c.toUpperCase().replace(/^CAP_/, ''));
  const dropped = upper(service.cap_drop);
  const kept = new Set([...(dropped.includes('ALL') ? [] : dockerDefaultCapabilities.filter((c) => !dropped.includes(c))), ...upper(service.cap_add)]);
  if (capabilities.sandbox.length === 0) problems.push('services/runner/src/sandbox/capabilities.ts names no capabilities');
  const wanted = runnerNeeds(capabilities, env['SANDBOX_NETWORK']);
  const missing = wanted.filter((c) => !kept.has(c));
  if (missing.length > 0) problems.push(`${where}: lacks the capabilities ${missing.join(', ')} (cap_add)`);
  if (!dropped.includes('ALL')) problems.push(`${where}: keeps Docker's default capabilities; drop ALL and add what the sandbox needs`);
  // Scripts get API_URL (else PUBLIC_URL) and the sandbox lets them reach only it.
  if (env['API_URL'] === undefined) problems.push(`${where}: API_URL is not set: scripts would get PUBLIC_URL, which this network does not serve`);
  else checkAddress('API_URL', env['API_URL']);
  return problems;
}

// --- the Dockerfile check -------------------------------------------------------------------

/** Everything wrong with deploy/Dockerfile: unpinned bases, missing manifests, root user. */
export function checkDockerfile(text: string, workspaceDirs: string[]): string[] {
  const problems: string[] = [];
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages = new Set<string>();
  let npmCiAt = -1;
  let user: string | undefined;
  let cmd: string | undefined;
  let entrypoint: string | undefined;
  const copiedManifests = new Set<string>();
  lines.forEach((line, index) => {
    const [instruction = '', ...rest] = line.split(/\s+/);
    const body = rest.join(' ');
    switch (instruction.toUpperCase()) {
      case 'ARG': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(body);
        if (m && m[2] !== undefined) args.set(m[1]!, m[2].replace(/^"|"$/g, ''));
        break;
      }
      case 'FROM': {
        const parts = body.split(/\s+/).filter((p) => !p.startsWith('--'));
        const image = (parts[0] ?? '').replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => args.get(n) ?? '');
        if (parts[1]?.toUpperCase() === 'AS' && parts[2]) stages.add(parts[2]);
        if (stages.has(image) || image === 'scratch') break;
        const lastSegment = image.split('/').pop() ?? '';
        const tag = lastSegment.includes(':') ? lastSegment.split(':').pop() : undefined;
        if (!image.includes('@sha256:') && (!tag || tag === 'latest')) problems.push(`FROM ${parts[0] ?? ''} is not pinned (${image || 'empty'})`);
        break;
      }
      case 'COPY': {
        if (npmCiAt >= 0) break;
        const sources = body.split(/\s+/).filter((p) => !p.startsWith('--'));
        sources.slice(0, -1).forEach((s) => copiedManifests.add(posix.normalize(s)));
        break;
      }
      case 'RUN':
        if (npmCiAt < 0 && /\bnpm ci\b/.test(body)) npmCiAt = index;
        break;
      case 'USER':
        user = body;
        break;
      case 'CMD':
        cmd = body;
        break;
      case 'ENTRYPOINT':
        entrypoint = body;
        break;
    }
  });
  if (npmCiAt < 0) problems.push('no RUN npm ci');
  for (const file of ['package.json', 'package-lock.json', ...workspaceDirs.map((d) => `${d}/package.json`)]) {
    if (!copiedManifests.has(file)) problems.push(`${file} is not copied before npm ci`);
  }
  if (user === undefined || /^(root|0)(:|$)/.test(user)) problems.push(`the image runs as ${user ?? 'root'}; expected an unprivileged USER`);
  if (!cmd || !/node --import tsx services\//.test(cmd)) problems.push('CMD does not run node --import tsx services/<name>/src/main.ts');
  // Orphans (a script's escaped processes) are reaped only by an init: Node reaps its own children.
  if (!entrypoint || !/tini/.test(entrypoint)) problems.push('no ENTRYPOINT starts an init (tini) that reaps orphans');
  return problems;
}

// --- the tests --------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  let compose: Compose;
  let ctx: ComposeContext;

  beforeAll(async () => {
    compose = parseCompose(readFileSync(COMPOSE_FILE, 'utf8'));
    ctx = { workspaces: await loadWorkspaces(), databases: databasesCreatedBy(readFileSync(INIT_SCRIPT, 'utf8')), runnerCapabilities: await loadRunnerCapabilities() };
  }, 60_000);

  it('parses, and names every process workspace', () => {
    expect(Object.keys(compose.services ?? {})).toEqual(expect.arrayContaining([...ctx.workspaces.keys()]));
  });

  it('finds a configuration shape for every process workspace', () => {
    for (const workspace of ctx.workspaces.values()) {
      expect({ workspace: workspace.name, found: workspace.shapeExport !== undefined }).toEqual({ workspace: workspace.name, found: true });
    }
  });

  it('agrees with the services’ configuration schemas, ports, addresses and images', () => {
    expect(checkCompose(compose, ctx)).toEqual([]);
  });

  it('gives every process an environment its own loadConfig accepts in production', () => {
    let checked = 0;
    for (const { service, workspace } of ourServices(compose).values()) {
      const load = ctx.workspaces.get(workspace ?? '')?.loadConfig;
      if (!load) continue;
      checked++;
      const env = Object.fromEntries(Object.entries(environmentOf(service)).map(([k, v]) => [k, interpolate(v).value]));
      expect(() => load(env)).not.toThrow();
      // And the same environment with a development secret is refused.
      if ('KEYCLOAK_CLIENT_SECRET' in env) {
        expect(() => load({ ...env, KEYCLOAK_CLIENT_SECRET: 'gef-api-dev-secret' })).toThrow(/KEYCLOAK_CLIENT_SECRET/);
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('creates every database the launcher creates, and Temporal’s', async () => {
    const launcherDatabases = await launcherExport<Record<string, string>>('config.ts', 'DATABASES');
    const created = [...ctx.databases.keys()];
    expect(created).toEqual(expect.arrayContaining([...Object.values(launcherDatabases), 'temporal', 'temporal_visibility']));
  });

  it('gives each service the V8 settings the launcher gives it', async () => {
    const serviceEnv = await launcherExport<(part: string, config: unknown) => Record<string, string>>('env.ts', 'serviceEnv');
    const resolveConfig = await launcherExport<(options: Record<string, unknown>) => unknown>('config.ts', 'resolveConfig');
    const config = resolveConfig({ processEnv: {}, dataDir: '/data', repoRoot: ROOT, ports: {} });
    const settings: Record<string, { compose: string | undefined; launcher: string | undefined }> = {};
    for (const { service, workspace } of ourServices(compose).values()) {
      if (!workspace) continue;
      settings[workspace] = { compose: environmentOf(service)['NODE_OPTIONS'], launcher: serviceEnv(workspace, config)['NODE_OPTIONS'] };
    }
    expect(Object.keys(settings)).toEqual(expect.arrayContaining(['gateway', 'execution', 'script']));
    for (const [workspace, { compose: inCompose, launcher }] of Object.entries(settings)) {
      expect({ workspace, NODE_OPTIONS: inCompose }).toEqual({ workspace, NODE_OPTIONS: launcher });
    }
    expect(settings['execution']?.launcher).toMatch(/--max-semi-space-size=\d+/);
  });

  it('registers the search attributes the launcher registers on the development server', async () => {
    const searchAttributes = await launcherExport<string[]>('temporal.ts', 'SEARCH_ATTRIBUTES');
    const setup = compose.services?.['temporal-setup'];
    expect(setup).toBeDefined();
    expect(environmentOf(setup!)['GEF_SEARCH_ATTRIBUTES']).toBe(searchAttributes.join(','));
  });

  it('lists in env.example every variable the file requires, and every variable it reads', () => {
    // The file's settings, not its comments.
    const file = readFileSync(COMPOSE_FILE, 'utf8').replace(/^\s*#.*$/gm, '');
    const example = readFileSync(join(ROOT, 'deploy', 'docker', 'env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
    const required = new Set([...file.matchAll(/\$\{([A-Z][A-Z0-9_]*):\?/g)].map((m) => m[1]!));
    const read = new Set([...file.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...required].filter((name) => !new RegExp(`^${name}=`, 'm').test(example))).toEqual([]);
    expect([...read].filter((name) => !listed.has(name))).toEqual([]);
  });

  it('imports the gef realm into Keycloak with every placeholder it uses set', () => {
    const keycloak = compose.services?.['keycloak'];
    expect(keycloak).toBeDefined();
    expect(volumeTargets(keycloak!)).toContain('/opt/keycloak/data/import/gef-realm.json');
    const mounted = (keycloak!.volumes ?? []).some((v) => typeof v === 'string' && v.startsWith('./deploy/keycloak/gef-realm.json:'));
    expect(mounted).toBe(true);
    const realm = readFileSync(REALM_FILE, 'utf8');
    const placeholders = new Set([...realm.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}/g)].map((m) => m[1]!));
    const env = environmentOf(keycloak!);
    for (const name of placeholders) expect({ placeholder: name, set: name in env }).toEqual({ placeholder: name, set: true });
  });

  describe('checkCompose on a broken file', () => {
    const broken = (mutate: (c: Compose) => void): string[] => {
      const copy = structuredClone(compose);
      mutate(copy);
      return checkCompose(copy, ctx);
    };
    const envOf = (c: Compose, name: string): Record<string, unknown> => c.services![name]!.environment as Record<string, unknown>;

    it('names a variable no schema knows', () => {
      expect(broken((c) => (envOf(c, 'user')['USER_DATABASE_URL'] = 'x'))).toContain('user: USER_DATABASE_URL is not a configuration variable of services/user');
    });

    it('names a value the schema refuses, and a missing production mode', () => {
      const problems = broken((c) => {
        envOf(c, 'script')['LOG_LEVEL'] = 'loud';
        envOf(c, 'script')['GEF_ENV'] = 'development';
      });
      expect(problems).toEqual(expect.arrayContaining(['script: LOG_LEVEL=loud is refused by its schema', 'script: GEF_ENV must be production (is development)']));
    });

    it('names a required variable that is not set', () => {
      const workspaces = new Map(ctx.workspaces);
      const runner = workspaces.get('runner')!;
      const mustBeSet: FieldSchema = { safeParse: (v) => ({ success: typeof v === 'string' && v !== '' }) };
      workspaces.set('runner', { ...runner, shape: { ...runner.shape, RUNNER_TOKEN: mustBeSet } });
      expect(checkCompose(compose, { ...ctx, workspaces })).toContain('runner: RUNNER_TOKEN is required by services/runner but not set');
    });

    it('names ports that disagree with PORT and METRICS_PORT', () => {
      const problems = broken((c) => {
        c.services!['script']!.expose = ['50052', '9999'];
        envOf(c, 'execution')['METRICS_PORT'] = '9200';
        c.services!['gateway']!.ports = ['8000:8000'];
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'script: port 9999 is neither PORT nor METRICS_PORT (50052, 9102)',
          'execution: METRICS_PORT=9200 differs from the documented 9103',
          'execution: port 9103 is neither PORT nor METRICS_PORT (50053, 9200)',
          'execution: the healthcheck calls :9103/readyz, expected :9200/readyz',
          'gateway: port 8000 is neither PORT nor METRICS_PORT (3000)',
          'gateway: PORT 3000 is not published',
        ]),
      );
    });

    it('names a missing or wrong healthcheck', () => {
      const problems = broken((c) => {
        delete c.services!['runner']!.healthcheck;
        c.services!['gateway']!.healthcheck = { test: ['CMD', 'node', 'deploy/docker/healthcheck.js', 'http://127.0.0.1:3000/ping'] };
      });
      expect(problems).toEqual(expect.arrayContaining(['runner: no healthcheck', 'gateway: the healthcheck calls :3000/ping, expected :3000/api-health']));
    });

    it('names URLs that point at the wrong service or port', () => {
      const problems = broken((c) => {
        envOf(c, 'gateway')['USER_SERVICE_URL'] = 'http://user:50052';
        envOf(c, 'execution')['SCRIPT_SERVICE_URL'] = 'http://gateway:50052';
        envOf(c, 'runner')['EXECUTION_SERVICE_URL'] = 'http://127.0.0.1:50053';
        envOf(c, 'user')['DATABASE_URL'] = 'postgres://gef_user:${GEF_USER_DB_PASSWORD:?x}@postgres:5432/gef_script';
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'gateway: USER_SERVICE_URL uses port 50052, which user does not declare',
          'gateway: USER_SERVICE_URL uses port 50052, but user listens on PORT 50051',
          'execution: SCRIPT_SERVICE_URL points at gateway, but services/script runs as script',
          'runner: EXECUTION_SERVICE_URL points at 127.0.0.1, which is not a compose service',
          'user: DATABASE_URL names gef_script, expected gef_user',
          'user: DATABASE_URL logs in as gef_user, but gef_script belongs to gef_script',
        ]),
      );
    });

    it('names secrets given as literals or defaults', () => {
      const problems = broken((c) => {
        envOf(c, 'gateway')['EXECUTION_TOKEN_SECRET'] = 'a-literal-secret-in-the-file';
        envOf(c, 'user')['GEF_ADMIN_PASSWORD'] = '${GEF_ADMIN_PASSWORD:-Admin-Dev-Passw0rd!}';
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'gateway: EXECUTION_TOKEN_SECRET must come from a required variable alone (${VAR:?}), not a-literal-secret-in-the-file',
          'user: GEF_ADMIN_PASSWORD must come from a required variable alone (${VAR:?}), not ${GEF_ADMIN_PASSWORD:-Admin-Dev-Passw0rd!}',
        ]),
      );
    });

    it('names a runner that cannot give each run a user of its own, or whose scripts cannot reach the API', () => {
      expect(
        broken((c) => {
          delete c.services!['runner']!.user;
          c.services!['runner']!.cap_add = ['SETUID', 'SETGID', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER'];
          delete envOf(c, 'runner')['API_URL'];
        }),
      ).toEqual(
        expect.arrayContaining([
          "runner: runs as the image's unprivileged user; the sandbox needs root in the container (user: root)",
          'runner: lacks the capabilities KILL, SYS_NICE, NET_ADMIN (cap_add)',
          'runner: API_URL is not set: scripts would get PUBLIC_URL, which this network does not serve',
        ]),
      );
      expect(
        broken((c) => {
          c.services!['runner']!.user = 'node';
          delete c.services!['runner']!.cap_drop;
          delete c.services!['runner']!.cap_add;
          envOf(c, 'runner')['SANDBOX'] = 'off';
          envOf(c, 'runner')['API_URL'] = 'http://localhost:3000';
        }),
      ).toEqual(
        expect.arrayContaining([
          'runner: SANDBOX=off runs scripts as the runner itself',
          'runner: runs as node; the sandbox needs root in the container (user: root)',
          'runner: lacks the capabilities SYS_NICE, NET_ADMIN (cap_add)',
          "runner: keeps Docker's default capabilities; drop ALL and add what the sandbox needs",
          'runner: API_URL points at localhost, which is not a compose service',
        ]),
      );
    });

    it('names unpinned images, missing services, dependencies and volumes', () => {
      const problems = broken((c) => {
        c.services!['temporal-ui']!.image = 'temporalio/ui:latest';
        c.services!['maildev']!.image = 'maildev/maildev';
        delete c.services!['execution'];
        delete (c.services!['script']!.depends_on as Record<string, unknown>)['postgres'];
        (c.services!['gateway']!.depends_on as Record<string, unknown>)['keycloak'] = { condition: 'service_started' };
        c.services!['runner']!.volumes = [];
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'temporal-ui: image temporalio/ui:latest is not pinned (latest)',
          'maildev: image maildev/maildev has no tag',
          `services/execution has no compose service built from ${DOCKERFILE}`,
          'script: does not wait for postgres (depends_on)',
          'gateway: waits for keycloak with service_started, not service_healthy',
          'runner: GEF_DATA_DIR /var/lib/gef is not a volume',
        ]),
      );
    });
  });
});

describe('deploy/Dockerfile', () => {
  const workspaceDirs = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

  it('exists, pins its base image, installs every workspace and runs as an unprivileged user', () => {
    expect(checkDockerfile(readFileSync(join(ROOT, DOCKERFILE), 'utf8'), workspaceDirs)).toEqual([]);
  });

  it('is what every process in the compose file is built from', () => {
    const compose = parseCompose(readFileSync(COMPOSE_FILE, 'utf8'));
    expect([...ourServices(compose).values()].map((s) => s.workspace).sort()).toEqual(processWorkspaceDirs().map((d) => posix.basename(d)).sort());
  });

  it('names an unpinned base, a missing manifest and a root user', () => {
    const text = ['ARG BASE=node:latest', 'FROM ${BASE} AS deps', 'COPY package.json package-lock.json ./', 'RUN npm ci', 'FROM deps', 'CMD ["node", "main.js"]'].join('\n');
    expect(checkDockerfile(text, ['services/user'])).toEqual([
      'FROM ${BASE} is not pinned (node:latest)',
      'services/user/package.json is not copied before npm ci',
      'the image runs as root; expected an unprivileged USER',
      'CMD does not run node --import tsx services/<name>/src/main.ts',
      'no ENTRYPOINT starts an init (tini) that reaps orphans',
    ]);
  });
});

describe('.dockerignore', () => {
  it('keeps dependencies, data, build output and git history out of the build context', () => {
    const entries = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const wanted of ['node_modules', '.data', 'dist', '.git']) {
      expect({ wanted, ignored: entries.some((e) => e === wanted || e === `**/${wanted}`) }).toEqual({ wanted, ignored: true });
    }
  });
});

describe('interpolate', () => {
  it('resolves compose interpolation as if nothing were set', () => {
    expect(interpolate('a${X:-b}c')).toEqual({ value: 'abc', required: [], defaulted: true });
    expect(interpolate('$${X}')).toEqual({ value: '${X}', required: [], defaulted: false });
    expect(interpolate('${SECRET:?set it}')).toEqual({ value: sampleFor('SECRET'), required: ['SECRET'], defaulted: false });
    expect(interpolate('${UNSET}/$ALSO')).toEqual({ value: '/', required: [], defaulted: true });
  });
});
