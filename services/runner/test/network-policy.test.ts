import { spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { createLogger } from '@gef/common';
import { installNetworkPolicy, nameServersOf, networkRuleset, packageIndexEndpoints, tableName } from '../src/sandbox/network-policy';

const logger = createLogger('test', 'silent');

describe('networkRuleset', () => {
  const policy = { mode: 'internet' as const, uidFirst: 900000, uidLast: 900999, api: { addresses: ['127.0.0.1', '::1'], port: 3000 } };

  it('lets the sandbox users reach the API and DNS, and refuses this host and private networks', () => {
    const text = networkRuleset(policy, tableName(42));
    expect(text).toContain('table inet gef_sandbox_42 {');
    // Matched as the connection was made, before any address translation.
    expect(text).toContain('meta skuid 900000-900999 meta l4proto tcp ct original ip daddr 127.0.0.1 ct original proto-dst 3000 accept');
    expect(text).toContain('meta skuid 900000-900999 meta l4proto tcp ct original ip6 daddr ::1 ct original proto-dst 3000 accept');
    expect(text).toContain('meta skuid 900000-900999 meta l4proto udp ct original proto-dst 53 accept');
    expect(text).toMatch(/meta skuid 900000-900999 ip daddr \{[^}]*127\.0\.0\.0\/8[^}]*169\.254\.0\.0\/16[^}]*\} reject/);
    expect(text).toMatch(/meta skuid 900000-900999 ip6 daddr \{[^}]*fc00::\/7[^}]*\} reject/);
    expect(text).toContain('meta skuid 900000-900999 fib daddr type local reject');
    // The API comes before the refusals.
    expect(text.indexOf('proto-dst 3000 accept')).toBeLessThan(text.indexOf('reject'));
  });

  it('refuses everything but the API and DNS in `api` mode', () => {
    const text = networkRuleset({ ...policy, mode: 'api' }, tableName(1));
    expect(text).toContain('meta skuid 900000-900999 reject');
    expect(text).not.toContain('172.16.0.0/12');
  });

  it("lets the builds' users reach their package indexes (a private one too) and public addresses, whatever the scripts' mode", () => {
    const builds = { uidFirst: 900984, uidLast: 900999, indexes: [{ addresses: ['10.1.2.3', 'fd00::5'], port: 8443 }] };
    const text = networkRuleset({ ...policy, uidLast: 900983, mode: 'api', builds }, tableName(2));
    const b = 'meta skuid 900984-900999';
    expect(text).toContain('meta skuid 900000-900983 reject');
    expect(text).toContain(`${b} meta l4proto tcp ct original ip daddr 10.1.2.3 ct original proto-dst 8443 accept`);
    expect(text).toContain(`${b} meta l4proto tcp ct original ip6 daddr fd00::5 ct original proto-dst 8443 accept`);
    expect(text).toContain(`${b} fib daddr type local reject`);
    expect(text).toMatch(new RegExp(`${b} ip daddr \\{[^}]*10\\.0\\.0\\.0/8[^}]*\\} reject`));
    // The index before the refusal of its private range; the builds' users never get the scripts' API rule.
    expect(text.indexOf(`${b} meta l4proto tcp ct original ip daddr 10.1.2.3`)).toBeLessThan(text.indexOf(`${b} ip daddr {`));
    expect(text).not.toContain(`${b} meta l4proto tcp ct original ip daddr 127.0.0.1`);
  });
});

describe('name servers', () => {
  it("reads resolv.conf's name servers, addresses only", () => {
    expect(nameServersOf('# comment\nnameserver 10.0.0.2\nsearch x\n nameserver fe80::1%eth0\nnameserver dns.example\nnameserver 10.0.0.2\n')).toEqual(['10.0.0.2', 'fe80::1']);
  });

  it('lets port 53 reach the name servers only, when they are known', () => {
    const text = networkRuleset({ mode: 'internet', uidFirst: 1, uidLast: 2, api: { addresses: [], port: 3000 }, dns: ['10.0.0.2', 'fd00::53'], builds: { uidFirst: 3, uidLast: 4, indexes: [] } }, tableName(3));
    expect(text).toContain('meta skuid 1-2 meta l4proto udp ct original ip daddr 10.0.0.2 ct original proto-dst 53 accept');
    expect(text).toContain('meta skuid 1-2 meta l4proto tcp ct original ip6 daddr fd00::53 ct original proto-dst 53 accept');
    expect(text).toContain('meta skuid 3-4 meta l4proto tcp ct original ip daddr 10.0.0.2 ct original proto-dst 53 accept');
    expect(text).not.toMatch(/skuid \d+-\d+ meta l4proto (udp|tcp) ct original proto-dst 53 accept/);
  });
});

describe('packageIndexEndpoints', () => {
  it("reads pip's indexes, find-links pages and proxies (addresses as they are), PyPI when no index is set", async () => {
    const found = await packageIndexEndpoints({
      PIP_INDEX_URL: 'https://10.0.0.7/simple',
      PIP_EXTRA_INDEX_URL: 'http://192.168.1.9:8080/simple https://10.0.0.7/other',
      PIP_FIND_LINKS: '/opt/wheels https://[fd00::1]/wheels/',
      HTTPS_PROXY: 'http://user:secret@172.16.0.2:3128',
    });
    expect(found).toEqual([
      { addresses: ['10.0.0.7'], port: 443 },
      { addresses: ['192.168.1.9'], port: 8080 },
      { addresses: ['10.0.0.7'], port: 443 },
      { addresses: ['fd00::1'], port: 443 },
      { addresses: ['172.16.0.2'], port: 3128 },
    ]);
    const missing: string[] = [];
    const pypi = await packageIndexEndpoints({ HTTPS_PROXY: 'http://user:secret@no-such-host.invalid:3128' }, (url) => missing.push(url));
    expect(pypi.map((e) => e.port)).toEqual([443, 443]);
    // A proxy's credentials are never repeated.
    expect(missing).toEqual(['http://no-such-host.invalid:3128']);
  });
});

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;

// The rules in the kernel (needs root and nftables, as the runner does; CI installs both).
(root ? describe : describe.skip)('installNetworkPolicy (as root)', () => {
  const uid = 913_000 + (process.pid % 1000);
  const servers: net.Server[] = [];

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  const listen = (host = '127.0.0.1') =>
    new Promise<number>((resolve) => {
      const s = net.createServer((c) => c.destroy()).listen(0, host, () => resolve((s.address() as net.AddressInfo).port));
      servers.push(s);
    });

  /** Connects as the sandbox uid; 'ok' or the error. */
  const connectAs = (port: number, host = '127.0.0.1') =>
    spawnSync(
      'setpriv',
      [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '/usr/bin/python3', '-c', `import socket\ntry:\n  socket.create_connection(("${host}", ${port}), 3); print("ok")\nexcept OSError as e: print("refused", e)`],
      { encoding: 'utf8' },
    ).stdout.trim();

  it('has nftables', () => {
    expect(haveNft).toBe(true);
  });

  it('refuses the sandbox users this host but the API, and lifts that when removed', async () => {
    const api = await listen();
    const database = await listen();
    expect(connectAs(database)).toBe('ok');
    const policy = await installNetworkPolicy({ mode: 'internet', uidFirst: uid, uidLast: uid, api: { addresses: ['127.0.0.1'], port: api } }, logger);
    try {
      expect(connectAs(api)).toBe('ok');
      expect(connectAs(database)).toMatch(/^refused/);
      // Root (the runner itself) is not affected.
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(database, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
    } finally {
      await policy.remove();
    }
    expect(connectAs(database)).toBe('ok');
  });

  it('lets the API be reached at the address the runner was given when address translation sends it elsewhere (a Docker name server, a Kubernetes Service)', async () => {
    const api = await listen();
    // A Service's address, rewritten on the way out to where the API listens.
    const nat = 'gef_test_nat_' + process.pid;
    const natRules = [
      `table ip ${nat} {`,
      '  chain out {',
      '    type nat hook output priority -100; policy accept;',
      `    meta skuid ${uid} ip daddr 127.0.0.11 tcp dport 3999 dnat to 127.0.0.1:${api}`,
      '  }',
      '}',
      '',
    ].join('\n');
    expect(spawnSync('nft', ['-f', '-'], { input: natRules, encoding: 'utf8' }).status).toBe(0);
    const policy = await installNetworkPolicy({ mode: 'api', uidFirst: uid, uidLast: uid, api: { addresses: ['127.0.0.11'], port: 3999 } }, logger);
    try {
      expect(connectAs(3999, '127.0.0.11')).toBe('ok');
      // Where it was sent is not reachable by its own address.
      expect(connectAs(api)).toMatch(/^refused/);
    } finally {
      await policy.remove();
      spawnSync('nft', ['delete', 'table', 'ip', nat]);
    }
  });

  it("refuses this host's own addresses beyond loopback, public ones too", async () => {
    const own = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!own) return; // A machine with loopback alone has nothing more to refuse.
    const service = await listen('0.0.0.0');
    expect(connectAs(service, own)).toBe('ok');
    const policy = await installNetworkPolicy({ mode: 'internet', uidFirst: uid, uidLast: uid, api: { addresses: ['127.0.0.1'], port: 1 } }, logger);
    try {
      expect(connectAs(service, own)).toMatch(/^refused/);
    } finally {
      await policy.remove();
    }
  });

  it("follows the API to a new address, and keeps the rules while the lookup fails", async () => {
    const [first, second] = [await listen(), await listen()];
    let answer: () => Promise<{ addresses: string[]; port: number }> = async () => ({ addresses: ['127.0.0.1'], port: first });
    const policy = await installNetworkPolicy({ mode: 'internet', uidFirst: uid, uidLast: uid, api: { addresses: ['127.0.0.1'], port: first } }, logger, {
      resolve: () => answer(),
      everyMs: 50,
    });
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
      return check();
    };
    try {
      expect(connectAs(first)).toBe('ok');
      expect(connectAs(second)).toMatch(/^refused/);
      answer = async () => ({ addresses: ['127.0.0.1'], port: second });
      expect(await until(() => connectAs(second) === 'ok')).toBe(true);
      expect(connectAs(first)).toMatch(/^refused/);
      answer = () => Promise.reject(new Error('no such host'));
      await new Promise((r) => setTimeout(r, 300));
      expect(connectAs(second)).toBe('ok');
      expect(connectAs(first)).toMatch(/^refused/);
    } finally {
      await policy.remove();
    }
    expect(connectAs(first)).toBe('ok');
  });
});
