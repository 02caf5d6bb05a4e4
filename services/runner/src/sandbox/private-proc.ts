import { spawn } from 'node:child_process';

/**
 * Each run's own view of /proc: a mount namespace of its own (mount events kept private)
 * with a proc mounted `hidepid=invisible`, where a user sees only its own processes. Without
 * it, a script lists every process of the machine and reads their command lines: the
 * platform's services and the other runs. Needs CAP_SYS_ADMIN (and Linux 5.8 for the
 * option), which a runner in a container may lack: `canHideProcesses` finds out at start.
 */
export const privateProcOptions = 'nosuid,nodev,noexec,hidepid=invisible';

/** The shell command, run as root in the new mount namespace, that mounts the run's /proc. */
export const mountPrivateProc = `mount -t proc -o ${privateProcOptions} proc /proc`;

/** Whether this runner can give a process a /proc of its own (tried once, on a throwaway process). */
export function canHideProcesses(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', mountPrivateProc], {
      stdio: 'ignore',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}
