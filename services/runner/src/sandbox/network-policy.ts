import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from '@gef/common';
import { isAlive } from '../process/is-alive';

/**
 * Where sandboxed scripts may connect:
 * - `internet`: the API (API_URL) and public addresses, DNS anywhere; nothing on this host
 *   or on private, link-local (cloud metadata) or shared address ranges — so not the
 *   database, Temporal, the services or Keycloak;
 * - `api`: the API and DNS only;
 * - `open`: no rules (a development machine without nftables).
 */
export type NetworkMode = 'internet' | 'api' | 'open';

/** Addresses of one host and the port reached there. */
export interface Endpoint {
  addresses: string[];
  port: number;
}

export interface NetworkPolicy {
  mode: Exclude<NetworkMode, 'open'>;
  /** The sandbox users scripts run as (their first and last uid). */
  uidFirst: number;
  uidLast: number;
  /** The API's addresses and port, always reachable. */
  api: Endpoint;
  /**
   * The users builds run as: whatever the scripts' mode, they reach public addresses and the
   * package indexes and proxies pip is configured with (even on a private network), and
   * nothing else on this host or on private ranges.
   */
  builds?: { uidFirst: number; uidLast: number; indexes: Endpoint[] };
  /** The name servers (port 53) sandbox users may ask; any address when empty or absent. */
  dns?: string[];
}

/** The name servers of /etc/resolv.conf (its text), addresses only. */
export function nameServersOf(resolvConf: string): string[] {
  const found = [...resolvConf.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!.replace(/%.*$/, ''));
  return [...new Set(found.filter((a) => net.isIP(a) !== 0))];
}

/**
 * A rule letting `who` reach an address and port as the connection was made: its original
 * destination (conntrack's), not the one address translation made of it, which the output
 * hook sees. Docker's name server (127.0.0.11:53 rewritten to a port of its own) and a
 * Kubernetes Service (its address rewritten to a pod's, in a private range) are reached so.
 */
function allowRule(who: string, proto: 'tcp' | 'udp', address: string | undefined, port: number): string {
  const to = address === undefined ? '' : ` ct original ${net.isIPv6(address) ? 'ip6' : 'ip'} daddr ${address}`;
  return `${who} meta l4proto ${proto}${to} ct original proto-dst ${port} accept`;
}

/** The rules that let `who` ask for names: of the name servers given, or of any address. */
function dnsRules(who: string, servers: string[] | undefined): string[] {
  if (!servers || servers.length === 0) return [allowRule(who, 'udp', undefined, 53), allowRule(who, 'tcp', undefined, 53)];
  return servers.flatMap((a) => (['udp', 'tcp'] as const).map((proto) => allowRule(who, proto, a, 53)));
}

const tablePrefix = 'gef_sandbox_';
const privateV4 = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4'];
const privateV6 = ['::/127', '::ffff:0:0/96', 'fc00::/7', 'fe80::/10', 'ff00::/8'];

/** The nftables table of one runner process (by pid, so runners on one host keep theirs). */
export const tableName = (pid: number) => `${tablePrefix}${pid}`;

/** The ruleset (nft syntax) putting a policy in place, replacing the table if it exists. */
export function networkRuleset(policy: NetworkPolicy, table: string): string {
  const who = `meta skuid ${policy.uidFirst}-${policy.uidLast}`;
  const rules = [
    ...policy.api.addresses.map((a) => allowRule(who, 'tcp', a, policy.api.port)),
    ...dnsRules(who, policy.dns),
    ...(policy.mode === 'api'
      ? [`${who} reject`]
      : [
          // Every address of this host, public ones too (a service listening on 0.0.0.0).
          `${who} fib daddr type local reject`,
          `${who} ip daddr { ${privateV4.join(', ')} } reject`,
          `${who} ip6 daddr { ${privateV6.join(', ')} } reject`,
        ]),
  ];
  const builds = policy.builds;
  const builder = builds ? `meta skuid ${builds.uidFirst}-${builds.uidLast}` : '';
  const buildRules = builds
    ? [
        ...builds.indexes.flatMap((e) => e.addresses.map((a) => allowRule(builder, 'tcp', a, e.port))),
        ...dnsRules(builder, policy.dns),
        `${builder} fib daddr type local reject`,
        `${builder} ip daddr { ${privateV4.join(', ')} } reject`,
        `${builder} ip6 daddr { ${privateV6.join(', ')} } reject`,
      ]
    : [];
  return [
    // Declared first, so the delete that follows never fails: the table is replaced whole.
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    ...[...rules, ...buildRules].map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

function nft(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('nft', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/sbin:/usr/bin:/bin' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => resolve({ code: null, output: err.message }));
    child.on('close', (code) => resolve({ code, output }));
    // nft may exit (or be missing) before it reads its input: the pipe's EPIPE is not an
    // error of the runner's (the exit code says how nft ended); unhandled, it ended the runner.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** The addresses of the API's host (an address as it is; a name as it resolves now). */
export async function apiEndpoint(apiUrl: string): Promise<Endpoint> {
  return endpointOf(apiUrl);
}

/** The addresses of a URL's host (an address as it is; a name as it resolves now) and its port. */
async function endpointOf(address: string): Promise<Endpoint> {
  const url = new URL(address);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (net.isIP(host)) return { addresses: [host], port };
  const found = await lookup(host, { all: true });
  return { addresses: [...new Set(found.map((f) => f.address))], port };
}

/** pip's default index and the host its files come from. */
const defaultIndexes = ['https://pypi.org/simple', 'https://files.pythonhosted.org'];

/**
 * The package indexes and proxies pip is configured with in the builds' environment
 * (PIP_INDEX_URL or PyPI, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS pages, HTTP(S)_PROXY), as
 * they resolve now. A name that does not resolve is left out (and logged by the caller).
 */
export async function packageIndexEndpoints(env: Record<string, string>, onMissing: (url: string, why: string) => void = () => undefined): Promise<Endpoint[]> {
  const words = (name: string) => (env[name] ?? '').split(/\s+/).filter((w) => /^https?:\/\//i.test(w));
  const urls = [
    ...(env['PIP_INDEX_URL'] ? words('PIP_INDEX_URL') : defaultIndexes),
    ...words('PIP_EXTRA_INDEX_URL'),
    ...words('PIP_FIND_LINKS'),
    ...['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'PIP_PROXY'].flatMap(words),
  ];
  const found: Endpoint[] = [];
  for (const url of new Set(urls)) {
    try {
      found.push(await endpointOf(url));
    } catch (err) {
      onMissing(url.replace(/\/\/[^@/]*@/, '//'), err instanceof Error ? err.message : String(err));
    }
  }
  return found;
}

/** Follows the API's address: how to look it up again, and how often. */
export interface ApiAddressWatch {
  resolve: () => Promise<NetworkPolicy['api']>;
  everyMs: number;
}

const sameEndpoint = (a: Endpoint, b: Endpoint) =>
  a.port === b.port && a.addresses.length === b.addresses.length && [...a.addresses].sort().join() === [...b.addresses].sort().join();

/**
 * Puts the policy in place for this runner's sandbox users (and removes the tables of
 * runners that died without removing theirs). Throws when nftables refuses: scripts must
 * not run with the network open by mistake.
 *
 * With `watch`, the API's name is looked up again every `everyMs`, and the rules follow
 * when its addresses change (a gateway recreated on another address inside a compose or
 * cluster network), replaced in one nftables transaction. A lookup that fails keeps the
 * rules as they are.
 */
export async function installNetworkPolicy(policy: NetworkPolicy, logger: Logger, watch?: ApiAddressWatch): Promise<{ remove: () => Promise<void> }> {
  const listed = await nft(['list', 'tables']);
  for (const m of listed.output.matchAll(new RegExp(`^table inet ${tablePrefix}(\\d+)$`, 'gm'))) {
    const pid = Number(m[1]);
    if (pid !== process.pid && !isAlive(pid)) await nft(['delete', 'table', 'inet', tableName(pid)]);
  }
  const table = tableName(process.pid);
  const applied = await nft(['-f', '-'], networkRuleset(policy, table));
  if (applied.code !== 0) {
    throw new Error(`cannot restrict the sandbox's network with nftables (${applied.output.trim().split('\n')[0] || `exit ${String(applied.code)}`}); install nftables and run the runner with CAP_NET_ADMIN (outside production, SANDBOX_NETWORK=open runs scripts without network rules)`);
  }
  logger.info(
    { mode: policy.mode, uids: `${policy.uidFirst}-${policy.uidLast}`, api: policy.api, ...(policy.builds ? { buildUids: `${policy.builds.uidFirst}-${policy.builds.uidLast}`, indexes: policy.builds.indexes } : {}) },
    'sandbox network restricted',
  );

  let current = policy;
  let removed = false;
  let lookupFailing = false;
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = async (w: ApiAddressWatch) => {
    let api: NetworkPolicy['api'];
    try {
      api = await w.resolve();
    } catch (err) {
      if (!lookupFailing) logger.warn({ err: String(err) }, "the API's address could not be looked up again: the sandbox's rules stay as they are");
      lookupFailing = true;
      return;
    }
    lookupFailing = false;
    if (removed || sameEndpoint(api, current.api)) return;
    const next = { ...current, api };
    const result = await nft(['-f', '-'], networkRuleset(next, table));
    if (result.code !== 0) {
      logger.error({ output: result.output.trim().split('\n')[0] }, "the sandbox's rules could not follow the API's new address");
      return;
    }
    logger.info({ from: current.api, to: api }, "the sandbox's rules follow the API's new address");
    current = next;
  };
  const timer = watch
    ? setInterval(() => {
        refreshing = refreshing.then(() => refresh(watch));
      }, watch.everyMs)
    : undefined;
  timer?.unref();
  return {
    remove: async () => {
      removed = true;
      if (timer) clearInterval(timer);
      await refreshing;
      await nft(['delete', 'table', 'inet', table]);
    },
  };
}
