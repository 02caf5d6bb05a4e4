import type { Logger } from '@gef/common';
import type { RunnerConfig } from '../config';
import { effectiveCapabilities, missingCapabilities, sandboxCapabilities } from './capabilities';
import { privateProcTools, type PrivateProcTools } from './private-proc';
import { hasTool } from './tools';

/** Whether runs get users of their own: `on` needs root (setuid) and setpriv. */
export async function sandboxMode(config: RunnerConfig, logger: Logger): Promise<{ mode: 'on' | 'off'; prlimit: boolean; setpriv: boolean; privateProc?: PrivateProcTools }> {
  const [setpriv, prlimit] = await Promise.all([hasTool('setpriv'), hasTool('prlimit')]);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const possible = root && setpriv;
  const wanted = config.SANDBOX === 'auto' ? (config.GEF_ENV === 'production' ? 'on' : possible ? 'on' : 'off') : config.SANDBOX;
  if (wanted === 'on' && !possible) {
    throw new Error(`SANDBOX=on needs the runner to run as root with setpriv (root: ${root}, setpriv: ${setpriv})`);
  }
  if (wanted === 'on') {
    // Root in a container or unit that dropped what the sandbox needs: say so now, not at
    // the first run that cannot get its own user.
    const effective = effectiveCapabilities();
    const missing = effective === undefined ? [] : missingCapabilities(effective, sandboxCapabilities);
    if (missing.length > 0) throw new Error(`the sandbox needs ${missing.join(', ')}: grant them to the runner (docker-compose.yml's cap_add lists what it takes)`);
  }
  if (wanted === 'off') logger.warn('scripts run as the runner\'s own user (no sandbox users): development only');
  if (!prlimit) logger.warn('prlimit is missing: scripts run without resource limits');
  const privateProc = wanted === 'on' ? await privateProcTools() : undefined;
  if (wanted === 'on' && !privateProc) {
    logger.warn('runs see every process of this machine in /proc (a /proc of their own needs CAP_SYS_ADMIN, unshare and mount, and Linux 5.8)');
  }
  return { mode: wanted, prlimit, setpriv, ...(privateProc ? { privateProc } : {}) };
}
