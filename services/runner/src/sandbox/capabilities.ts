import { readFileSync } from 'node:fs';

/**
 * The Linux capabilities (bit numbers of capabilities(7)) a runner needs to give each run a
 * user of its own: to switch to it (SETUID, SETGID), to hand it the run's directories and
 * take them back (CHOWN, DAC_OVERRIDE, FOWNER), to stop its processes (KILL), and to give
 * an interpreter that waited in the pool at a low priority the runs' priority back when it
 * takes one (SYS_NICE). A container or unit that runs the runner as root should keep these
 * and may drop the rest; nftables rules on the sandbox users (SANDBOX_NETWORK) need
 * NET_ADMIN besides, and a /proc of each run's own (private-proc.ts) SYS_ADMIN, without which
 * the runner warns and runs see every process. Scripts get none of them: they run as their
 * own users.
 */
export const sandboxCapabilities = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, KILL: 5, SETGID: 6, SETUID: 7, SYS_NICE: 23 } as const;
export const networkCapability = { NET_ADMIN: 12 } as const;

/** The effective capability set of this process, from /proc/self/status (undefined when unreadable). */
export function effectiveCapabilities(status?: string): bigint | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return m ? BigInt(`0x${m[1]!}`) : undefined;
}

/** The names in `wanted` whose bits `effective` lacks. */
export function missingCapabilities(effective: bigint, wanted: Readonly<Record<string, number>>): string[] {
  return Object.entries(wanted)
    .filter(([, bit]) => (effective & (1n << BigInt(bit))) === 0n)
    .map(([name]) => `CAP_${name}`);
}
