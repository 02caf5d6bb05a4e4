/**
 * deploy/k8s, checked without a cluster: every Deployment against its service's
 * configuration schema and `loadConfig` in production, where each variable comes from
 * (secrets only from the Secret), ports and probes, the addresses between services, the
 * runner's sandbox (root, the capabilities it needs and no others, no secrets) and the
 * network policies. Each check returns a list of problems, so the tests below can also feed
 * it broken input.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { launcherExport, loadRunnerCapabilities, loadWorkspaces, ROOT, runnerNeeds, sampleFor, SECRET_KEYS, type RunnerCapabilities, type Workspace } from './support/workspaces';

const K8S_DIR = join(ROOT, 'deploy', 'k8s');
const SECRET_EXAMPLE = 'secrets.example.yaml';

export interface Manifest {
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** Every document of one YAML file. */
function documents(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'))
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

export interface K8sContext {
  workspaces: Map<string, Workspace>;
  runnerCapabilities: RunnerCapabilities;
  /** The Secret the operator creates (secrets.example.yaml). */
  secrets: Manifest[];
}

type EnvSource = 'literal' | 'config' | 'secret';

/** A container's environment as the pod would get it: value and where it came from. */
function containerEnv(container: any, byKind: (kind: string, name: string) => Manifest | undefined, where: string, problems: string[]): Map<string, { value: string; source: EnvSource }> {
  const env = new Map<string, { value: string; source: EnvSource }>();
  if (container.envFrom) problems.push(`${where}: envFrom hands a process every key of a ConfigMap or Secret; list its variables`);
  for (const e of (container.env ?? []) as any[]) {
    const name = String(e.name);
    if (e.value !== undefined) {
      env.set(name, { value: String(e.value), source: 'literal' });
      continue;
    }
    const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
    const kind = e.valueFrom?.configMapKeyRef ? 'ConfigMap' : e.valueFrom?.secretKeyRef ? 'Secret' : undefined;
    if (!ref || !kind) {
      problems.push(`${where}: ${name} has neither a value nor a ConfigMap or Secret key`);
      continue;
    }
    const source = byKind(kind, String(ref.name));
    const values = { ...source?.data, ...source?.stringData };
    if (!source) problems.push(`${where}: ${name} comes from ${kind} ${String(ref.name)}, which is not defined`);
    else if (!(String(ref.key) in values)) problems.push(`${where}: ${name} comes from ${kind} ${String(ref.name)}, which has no key ${String(ref.key)}`);
    const given = String(values[String(ref.key)] ?? '');
    // A secret's example value stands in when it is an address (a database URL); else a strong sample.
    env.set(name, kind === 'Secret' ? { value: /^[a-z]+:\/\//.test(given) ? given : sampleFor(name), source: 'secret' } : { value: given, source: 'config' });
  }
  return env;
}

/** The number behind a probe's or Service's port: a number, or a container port's name. */
function portNumber(port: unknown, container: any): number | undefined {
  if (typeof port === 'number') return port;
  const named = ((container.ports ?? []) as any[]).find((p) => p.name === port);
  return named ? Number(named.containerPort) : undefined;
}

const labelsMatch = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const privateRanges = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'];

/** Everything wrong with the manifests, as sentences naming the object and variable. */
export function checkManifests(resources: Manifest[], ctx: K8sContext): string[] {
  const problems: string[] = [];
  const all = [...resources, ...ctx.secrets];
  const byKind = (kind: string, name: string) => all.find((m) => m.kind === kind && m.metadata?.name === name);
  const deployments = resources.filter((m) => m.kind === 'Deployment');
  const services = resources.filter((m) => m.kind === 'Service');

  /** The Deployment running a workspace (by its image gef-api/<workspace>). */
  const workspaceOf = (d: Manifest): string | undefined => /^gef-api\/([a-z]+)(?::.*)?$/.exec(String(d.spec?.template?.spec?.containers?.[0]?.image ?? ''))?.[1];
  const deploymentOf = new Map(deployments.map((d) => [workspaceOf(d), d] as const));
  for (const workspace of ctx.workspaces.keys()) {
    if (!deploymentOf.has(workspace)) problems.push(`services/${workspace} has no Deployment (image gef-api/${workspace})`);
  }
  const frontDeployment = [...deploymentOf.entries()].find(([w]) => w && !('METRICS_PORT' in (ctx.workspaces.get(w)?.shape ?? {})))?.[1];

  for (const d of deployments) {
    const where = `Deployment ${d.metadata?.name ?? '?'}`;
    const pod = d.spec?.template?.spec ?? {};
    const containers = (pod.containers ?? []) as any[];
    if (containers.length !== 1) {
      problems.push(`${where}: expected one container, found ${containers.length}`);
      continue;
    }
    const container = containers[0];
    const workspaceName = workspaceOf(d);
    const workspace = workspaceName ? ctx.workspaces.get(workspaceName) : undefined;
    if (!workspace?.shape) {
      problems.push(`${where}: image ${String(container.image)} is not one of gef-api/<process workspace>`);
      continue;
    }
    const shape = workspace.shape;
    if (!labelsMatch(d.spec?.selector?.matchLabels, d.spec?.template?.metadata?.labels)) problems.push(`${where}: its selector does not match its pods' labels`);

    // Variables: known, valid, required ones present, production, secrets from the Secret.
    const env = containerEnv(container, byKind, where, problems);
    for (const [key, { value, source }] of env) {
      if (key === 'NODE_OPTIONS') continue;
      const field = shape[key];
      if (!field) {
        problems.push(`${where}: ${key} is not a configuration variable of services/${workspace.name}`);
        continue;
      }
      if (!field.safeParse(value === '' ? undefined : value).success) problems.push(`${where}: ${key}=${value} is refused by its schema`);
      const secret = SECRET_KEYS.includes(key) || key === 'DATABASE_URL';
      if (secret && source !== 'secret') problems.push(`${where}: ${key} must come from the Secret (secretKeyRef), not a ${source === 'literal' ? 'value' : 'ConfigMap'}`);
      if (!secret && source === 'secret') problems.push(`${where}: ${key} comes from the Secret but is not secret`);
    }
    for (const [key, field] of Object.entries(shape)) {
      if (!env.has(key) && !field.safeParse(undefined).success) problems.push(`${where}: ${key} is required by services/${workspace.name} but not set`);
    }
    const database = env.get('DATABASE_URL')?.value;
    if (database && /^postgres(ql)?:\/\//.test(database) && new URL(database).pathname !== `/gef_${workspace.name}`) {
      problems.push(`${where}: DATABASE_URL names ${new URL(database).pathname.slice(1)}, expected gef_${workspace.name}`);
    }
    if (env.get('GEF_ENV')?.value !== 'production') problems.push(`${where}: GEF_ENV must be production (is ${env.get('GEF_ENV')?.value ?? 'unset'})`);
    if (workspace.loadConfig) {
      try {
        workspace.loadConfig(Object.fromEntries([...env].map(([k, v]) => [k, v.value])));
      } catch (err) {
        problems.push(`${where}: loadConfig refuses its environment: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }

    // Ports and probes: PORT and METRICS_PORT as documented; readiness /readyz and liveness /healthz on METRICS_PORT, or /ping on the front's PORT.
    const documented = (key: string) => (key in shape ? Number(shape[key]!.safeParse(undefined).data) : undefined);
    const port = documented('PORT');
    const metricsPort = documented('METRICS_PORT');
    for (const [key, p] of [['PORT', port], ['METRICS_PORT', metricsPort]] as const) {
      if (p === undefined) continue;
      if (env.get(key)?.value !== String(p)) problems.push(`${where}: ${key} is ${env.get(key)?.value ?? 'unset'}, not the documented ${p}`);
      if (!((container.ports ?? []) as any[]).some((c) => Number(c.containerPort) === p)) problems.push(`${where}: no containerPort ${p} (${key})`);
    }
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const wanted = metricsPort !== undefined ? { port: metricsPort, path: probe === 'readinessProbe' ? '/readyz' : '/healthz' } : { port, path: '/ping' };
      const get = container[probe]?.httpGet;
      if (!get) problems.push(`${where}: no ${probe}`);
      else if (portNumber(get.port, container) !== wanted.port || get.path !== wanted.path) {
        problems.push(`${where}: ${probe} asks :${String(portNumber(get.port, container))}${String(get.path)}, expected :${String(wanted.port)}${wanted.path}`);
      }
    }

    // Addresses of the other services: a Service of theirs, on their PORT.
    for (const [key, { value }] of env) {
      const m = /^([A-Z]+)_SERVICE_URL$/.exec(key);
      const target = m ? m[1]!.toLowerCase() : key === 'API_URL' ? frontDeployment && workspaceOf(frontDeployment) : undefined;
      if (!target) continue;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        problems.push(`${where}: ${key}=${value} is not a URL`);
        continue;
      }
      const service = services.find((s) => s.metadata?.name === url.hostname);
      const targetDeployment = deploymentOf.get(target);
      const targetContainer = targetDeployment?.spec?.template?.spec?.containers?.[0];
      if (!service || !targetDeployment || !labelsMatch(service.spec?.selector, targetDeployment.spec?.template?.metadata?.labels)) {
        problems.push(`${where}: ${key} points at ${url.hostname}, which is not a Service of services/${target}`);
        continue;
      }
      const servicePort = ((service.spec?.ports ?? []) as any[]).find((p) => Number(p.port) === Number(url.port || 80));
      const targetPortField = ctx.workspaces.get(target)?.shape?.['PORT'];
      const targetPort = targetPortField ? Number(targetPortField.safeParse(undefined).data) : undefined;
      if (!servicePort) problems.push(`${where}: ${key} uses port ${url.port || 80}, which Service ${url.hostname} does not offer`);
      else if (targetPort !== undefined && portNumber(servicePort.targetPort ?? servicePort.port, targetContainer) !== targetPort) {
        problems.push(`${where}: ${key} reaches Service ${url.hostname}, whose port does not lead to services/${target}'s PORT ${targetPort}`);
      }
    }

    // Privileges: the runner as root with the sandbox's capabilities only, and no secret but
    // the runners' key;
    // everything else as an unprivileged user with none.
    const security = container.securityContext ?? {};
    const added = ((security.capabilities?.add ?? []) as string[]).map((c) => c.toUpperCase().replace(/^CAP_/, ''));
    const dropsAll = ((security.capabilities?.drop ?? []) as string[]).some((c) => c.toUpperCase() === 'ALL');
    if (!dropsAll) problems.push(`${where}: does not drop every capability (drop: [ALL])`);
    if (security.privileged) problems.push(`${where}: runs privileged`);
    if (security.allowPrivilegeEscalation !== false) problems.push(`${where}: allows privilege escalation`);
    if (workspace.name === 'runner') {
      const user = security.runAsUser ?? pod.securityContext?.runAsUser;
      if (user !== 0) problems.push(`${where}: runs as ${user === undefined ? "the image's unprivileged user" : `uid ${String(user)}`}; the sandbox needs root in the container`);
      const wantedCaps = runnerNeeds(ctx.runnerCapabilities, env.get('SANDBOX_NETWORK')?.value);
      const missing = wantedCaps.filter((c) => !added.includes(c));
      const extra = added.filter((c) => !wantedCaps.includes(c));
      if (missing.length > 0) problems.push(`${where}: lacks the capabilities ${missing.join(', ')}`);
      if (extra.length > 0) problems.push(`${where}: adds capabilities the sandbox does not need: ${extra.join(', ')}`);
      const secrets = [...env].filter(([name, v]) => v.source === 'secret' && name !== 'RUNNER_API_KEY').map(([name]) => name);
      if (secrets.length > 0) problems.push(`${where}: gets ${secrets.join(', ')}; the runner holds no secret but the runners' key`);
      if (env.get('SANDBOX')?.value === 'off') problems.push(`${where}: SANDBOX=off runs scripts as the runner itself`);
      if (!env.has('API_URL')) problems.push(`${where}: API_URL is not set: scripts would get PUBLIC_URL, the address outside the cluster`);
    } else {
      if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${where}: does not insist on a non-root user (runAsNonRoot)`);
      if (added.length > 0) problems.push(`${where}: adds capabilities ${added.join(', ')}`);
    }
  }

  for (const s of services) {
    if (!deployments.some((d) => labelsMatch(s.spec?.selector, d.spec?.template?.metadata?.labels))) problems.push(`Service ${s.metadata?.name ?? '?'}: selects no Deployment`);
  }

  // The runner's pod: egress held, no private address beyond what it names.
  const runnerDeployment = deploymentOf.get('runner');
  const runnerPolicy = resources.find(
    (m) => m.kind === 'NetworkPolicy' && labelsMatch(m.spec?.podSelector?.matchLabels, runnerDeployment?.spec?.template?.metadata?.labels) && (m.spec?.policyTypes ?? []).includes('Egress'),
  );
  if (!runnerPolicy) problems.push('no NetworkPolicy holds the runner\'s egress');
  for (const rule of (runnerPolicy?.spec?.egress ?? []) as any[]) {
    if (!rule.to) problems.push('NetworkPolicy runner: an egress rule without `to` lets the runner reach anything');
    for (const peer of (rule.to ?? []) as any[]) {
      const block = peer.ipBlock;
      if (!block) continue;
      const except = (block.except ?? []) as string[];
      const open = privateRanges.filter((r) => !except.includes(r));
      if (block.cidr === '0.0.0.0/0' && open.length > 0) problems.push(`NetworkPolicy runner: egress to 0.0.0.0/0 does not leave out ${open.join(', ')}`);
    }
  }
  return problems;
}

/** The kustomization's resources, parsed; and the files of deploy/k8s it leaves out. */
function readKustomization(): { resources: Manifest[]; files: string[]; listed: string[] } {
  const kustomization = documents('kustomization.yaml')[0] as { resources?: string[] };
  const listed = kustomization.resources ?? [];
  return {
    resources: listed.flatMap((file) => documents(file)),
    files: readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml'),
    listed,
  };
}

describe('deploy/k8s', () => {
  let resources: Manifest[];
  let ctx: K8sContext;

  beforeAll(async () => {
    resources = readKustomization().resources;
    ctx = { workspaces: await loadWorkspaces(), runnerCapabilities: await loadRunnerCapabilities(), secrets: documents(SECRET_EXAMPLE) };
  }, 60_000);

  it('applies every manifest but the example Secret', () => {
    const { files, listed } = readKustomization();
    expect([...listed].sort()).toEqual(files.filter((f) => f !== SECRET_EXAMPLE).sort());
  });

  it('agrees with the services’ configuration schemas, ports, probes, addresses and privileges', () => {
    expect(checkManifests(resources, ctx)).toEqual([]);
  });

  it('gives each service the V8 settings the launcher gives it', async () => {
    const serviceEnv = await launcherExport<(part: string, config: unknown) => Record<string, string>>('env.ts', 'serviceEnv');
    const resolveConfig = await launcherExport<(options: Record<string, unknown>) => unknown>('config.ts', 'resolveConfig');
    const config = resolveConfig({ processEnv: {}, dataDir: '/data', repoRoot: ROOT, ports: {} });
    for (const d of resources.filter((m) => m.kind === 'Deployment')) {
      const container = d.spec.template.spec.containers[0];
      const workspace = /^gef-api\/([a-z]+)/.exec(String(container.image))![1]!;
      const value = ((container.env ?? []) as any[]).find((e) => e.name === 'NODE_OPTIONS')?.value as string | undefined;
      expect({ workspace, NODE_OPTIONS: value }).toEqual({ workspace, NODE_OPTIONS: serviceEnv(workspace, config)['NODE_OPTIONS'] });
    }
  });

  describe('checkManifests on broken manifests', () => {
    const broken = (mutate: (byName: (kind: string, name: string) => Manifest) => void): string[] => {
      const copy = structuredClone(resources);
      mutate((kind, name) => copy.find((m) => m.kind === kind && m.metadata?.name === name)!);
      return checkManifests(copy, ctx);
    };
    const envOf = (d: Manifest): any[] => d.spec.template.spec.containers[0].env;
    const container = (d: Manifest): any => d.spec.template.spec.containers[0];

    it('names unknown, refused, missing and misplaced variables', () => {
      const problems = broken((get) => {
        envOf(get('Deployment', 'user')).push({ name: 'USER_DATABASE_URL', value: 'x' });
        envOf(get('Deployment', 'script')).push({ name: 'UPLOAD_LIMIT_BYTES', value: 'lots' });
        const execution = envOf(get('Deployment', 'execution'));
        execution.splice(execution.findIndex((e) => e.name === 'EXECUTION_TOKEN_SECRET'), 1, { name: 'EXECUTION_TOKEN_SECRET', value: 'a-literal-secret-in-the-file' });
        const gateway = envOf(get('Deployment', 'gateway'));
        gateway.find((e) => e.name === 'GEF_ENV').value = 'development';
        gateway.find((e) => e.name === 'KEYCLOAK_URL').valueFrom.configMapKeyRef.key = 'KEYCLOAK';
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'Deployment user: USER_DATABASE_URL is not a configuration variable of services/user',
          'Deployment script: UPLOAD_LIMIT_BYTES=lots is refused by its schema',
          'Deployment execution: EXECUTION_TOKEN_SECRET must come from the Secret (secretKeyRef), not a value',
          'Deployment gateway: GEF_ENV must be production (is development)',
          'Deployment gateway: KEYCLOAK_URL comes from ConfigMap gef-settings, which has no key KEYCLOAK',
        ]),
      );
    });

    it('names wrong ports, probes and addresses', () => {
      const problems = broken((get) => {
        container(get('Deployment', 'execution')).readinessProbe.httpGet.path = '/metrics';
        envOf(get('Deployment', 'gateway')).find((e) => e.name === 'USER_SERVICE_URL').value = 'http://user:50052';
        envOf(get('Deployment', 'runner')).find((e) => e.name === 'EXECUTION_SERVICE_URL').value = 'http://postgres:5432';
        get('Service', 'script').spec.ports[0].targetPort = 'metrics';
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          'Deployment execution: readinessProbe asks :9103/metrics, expected :9103/readyz',
          'Deployment gateway: USER_SERVICE_URL uses port 50052, which Service user does not offer',
          'Deployment runner: EXECUTION_SERVICE_URL points at postgres, which is not a Service of services/execution',
          "Deployment runner: SCRIPT_SERVICE_URL reaches Service script, whose port does not lead to services/script's PORT 50052",
        ]),
      );
    });

    it('names a runner that cannot sandbox, holds a secret or has more than it needs, and an open egress', () => {
      const problems = broken((get) => {
        const runner = get('Deployment', 'runner');
        const security = container(runner).securityContext;
        delete security.runAsUser;
        security.capabilities.add = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'SYS_NICE', 'NET_ADMIN', 'SYS_ADMIN'];
        envOf(runner).push({ name: 'SANDBOX', value: 'off' });
        envOf(runner).splice(envOf(runner).findIndex((e) => e.name === 'API_URL'), 1);
        container(get('Deployment', 'user')).securityContext.capabilities.add = ['NET_ADMIN'];
        get('NetworkPolicy', 'runner').spec.egress.at(-1).to[0].ipBlock.except = ['10.0.0.0/8'];
      });
      expect(problems).toEqual(
        expect.arrayContaining([
          "Deployment runner: runs as the image's unprivileged user; the sandbox needs root in the container",
          'Deployment runner: lacks the capabilities KILL',
          'Deployment runner: adds capabilities the sandbox does not need: SYS_ADMIN',
          'Deployment runner: SANDBOX=off runs scripts as the runner itself',
          'Deployment runner: API_URL is not set: scripts would get PUBLIC_URL, the address outside the cluster',
          'Deployment user: adds capabilities NET_ADMIN',
          'NetworkPolicy runner: egress to 0.0.0.0/0 does not leave out 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16',
        ]),
      );
    });

    it('names a process without a Deployment and a Service that selects nothing', () => {
      const problems = checkManifests(
        resources.filter((m) => !(m.kind === 'Deployment' && m.metadata?.name === 'script')),
        ctx,
      );
      expect(problems).toEqual(expect.arrayContaining(['services/script has no Deployment (image gef-api/script)', 'Service script: selects no Deployment']));
    });
  });
});
