import type { EntityManager } from '@gef/common/orm';

/** A runner process's report of itself. */
export interface RunnerReport {
  /** The process (a UUID of its own, new at each start). */
  instance: string;
  /** Its host name. */
  runner: string;
  slots: number;
  busy: number;
  /** It stops: it takes no more runs. */
  stopping: boolean;
}

/** The runners online, added up. */
export interface RunnersCount {
  runners: number;
  slots: number;
  busy: number;
}

/** Rows of runners not heard of for this long are removed by later reports. */
const forgottenAfter = "interval '1 day'";

/** Runner processes and when each last reported (table runner_presence). */
export class RunnerPresenceRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Records a report: the process's row replaced, or marked stopped when it stops. A stopped
   * process's row changes no more (a report of it that arrives after its last is ignored).
   */
  async report(r: RunnerReport): Promise<void> {
    await this.em.execute(
      `with forgotten as (delete from runner_presence where seen_at < now() - ${forgottenAfter} and instance <> ?)
       insert into runner_presence (instance, runner, slots, busy, stopped, seen_at) values (?, ?, ?, ?, ?, now())
       on conflict (instance) do update set runner = excluded.runner, slots = excluded.slots, busy = excluded.busy, stopped = excluded.stopped, seen_at = excluded.seen_at
         where not runner_presence.stopped`,
      [r.instance, r.instance, r.runner, r.slots, r.busy, r.stopping],
    );
  }

  /** The runners that reported within the last `seconds` and have not stopped. */
  async online(seconds: number): Promise<RunnersCount> {
    const rows = await this.em.execute<{ runners: string; slots: string | null; busy: string | null }[]>(
      'select count(*) as runners, sum(slots) as slots, sum(busy) as busy from runner_presence where not stopped and seen_at > now() - make_interval(secs => ?)',
      [seconds],
    );
    const r = rows[0];
    return { runners: Number(r?.runners ?? 0), slots: Number(r?.slots ?? 0), busy: Number(r?.busy ?? 0) };
  }
}
