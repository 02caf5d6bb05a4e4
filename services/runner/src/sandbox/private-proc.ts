import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Each run's own view of /proc: a mount namespace of its own (mount events kept private)
 * with a proc mounted `hidepid=invisible`, where a user sees only its own processes. Without
 * it, a script lists every process of the machine and reads their command lines: the
 * platform's services and the other runs. Needs CAP_SYS_ADMIN (and Linux 5.8 for the
 * option), which a runner in a container may lack: `privateProcTools` finds out at start.
 */
export const privateProcOptions = 'nosuid,nodev,noexec,hidepid=invisible';

/** The tools a spawned run's chain uses, by absolute path (found once, at start). */
export interface PrivateProcTools {
  unshare: string;
  mount: string;
}

const toolDirs = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/local/sbin'];

function findTool(name: string): string | undefined {
  for (const dir of toolDirs) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      // Written into a shell command line: a path of plain characters only.
      if (/^[A-Za-z0-9/_.-]+$/.test(file)) return file;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** The shell command, run as root in the new mount namespace, that mounts the run's /proc. */
export const mountPrivateProc = (tools: PrivateProcTools) => `${tools.mount} -t proc -o ${privateProcOptions} proc /proc`;

/** Writes the shell's pid to each file `$0` names (the run's groups' cgroup.procs, joined by ':'). */
export const enterGroupsScript = 'g="$0"; while :; do echo $$ > "${g%%:*}" || exit 1; case "$g" in *:*) g="${g#*:}" ;; *) break ;; esac; done';

/**
 * The start of a spawned run's chain as root (`$0` the run's groups' cgroup.procs):
 * into the groups, umask 077, then a mount namespace of its own with the run's /proc, then
 * the command (`"$@"`) with exactly the environment given; `unshare` keeps the pid.
 */
export const enterPrivateProcScript = (tools: PrivateProcTools) =>
  `${enterGroupsScript} && umask 077 && exec ${tools.unshare} --mount --propagation private /bin/sh -c '${mountPrivateProc(tools)} && unset PWD && exec "$@"' sh "$@"`;

/**
 * The tools, when this runner can give a process a /proc of its own (tried once, on a
 * throwaway process); undefined when it cannot.
 */
export async function privateProcTools(): Promise<PrivateProcTools | undefined> {
  const unshare = findTool('unshare');
  const mount = findTool('mount');
  if (!unshare || !mount) return undefined;
  const tools = { unshare, mount };
  try {
    await run(unshare, ['--mount', '--propagation', 'private', '/bin/sh', '-c', mountPrivateProc(tools)], { env: {}, timeout: 10_000, killSignal: 'SIGKILL' });
    return tools;
  } catch {
    return undefined;
  }
}
