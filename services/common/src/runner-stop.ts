/**
 * Defaults of a runner's stop settings (RUNNER_DRAIN_SECONDS, SANDBOX_KILL_GRACE_SECONDS),
 * shared by the runner's configuration and the launcher that waits for a runner to stop.
 */
export const runnerStopDefaults = { drainSeconds: 30, killGraceSeconds: 5 } as const;

/**
 * The longest a stopping runner takes: its drain, the stopping of the runs still going
 * (SIGTERM, SIGKILL after the kill grace), and the recording of their last lines.
 */
export function runnerStopSeconds(drainSeconds: number, killGraceSeconds: number): number {
  return drainSeconds + killGraceSeconds + 20;
}
