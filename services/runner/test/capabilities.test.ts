import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { effectiveCapabilities, missingCapabilities, networkCapability, sandboxCapabilities } from '../src/sandbox/capabilities';

describe('capabilities', () => {
  it('reads the effective set from a status file', () => {
    expect(effectiveCapabilities('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t00000000000010e3\n')).toBe(0x10e3n);
    expect(effectiveCapabilities('Name:\tnode\n')).toBeUndefined();
  });

  it('names what a set lacks', () => {
    const all = { ...sandboxCapabilities, ...networkCapability };
    // CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID, NET_ADMIN and SYS_NICE: 0x8010eb.
    expect(missingCapabilities(0x8010ebn, all)).toEqual([]);
    expect(missingCapabilities(0x8010e3n, all)).toEqual(['CAP_FOWNER']);
    expect(missingCapabilities(0x10ebn, all)).toEqual(['CAP_SYS_NICE']);
    expect(missingCapabilities(0n, sandboxCapabilities)).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SYS_NICE']);
  });

  // Root with every capability the probes hand on (not root inside a narrowed set, nor under
  // no_new_privs, where a narrowed bounding set does not narrow what an exec keeps).
  const effective = effectiveCapabilities();
  const noNewPrivs = /^NoNewPrivs:\s*1$/m.test(fs.readFileSync('/proc/self/status', 'utf8'));
  const root =
    typeof process.getuid === 'function' && process.getuid() === 0 && !noNewPrivs && effective !== undefined && missingCapabilities(effective, sandboxCapabilities).length === 0;
  (root ? it : it.skip)('sees what a process was started without (as root)', () => {
    const probe = `const c = require(${JSON.stringify(join(__dirname, '..', 'src', 'sandbox', 'capabilities.ts'))}); console.log(c.missingCapabilities(c.effectiveCapabilities(), c.sandboxCapabilities).join(','))`;
    const run = (bounding: string) => {
      const probed = spawnSync('setpriv', [`--bounding-set=${bounding}`, '--', process.execPath, '--import', 'tsx', '-e', probe], { encoding: 'utf8' });
      if (probed.status !== 0) throw new Error(`setpriv --bounding-set=${bounding}: ${probed.stderr}`);
      return probed.stdout.trim();
    };
    expect(run('-all,+chown,+dac_override,+fowner,+kill,+setgid,+setuid,+sys_nice')).toBe('');
    expect(run('-all,+chown,+dac_override,+fowner,+setgid,+setuid')).toBe('CAP_KILL,CAP_SYS_NICE');
  });
});
