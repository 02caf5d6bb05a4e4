import type { PasswordLinkRequest } from '@gef/workflows/activities';

/** A Temporal client that records the workflows started, and fails while `down`. */
export class FakeTemporal {
  readonly started: { workflowId: string; args: PasswordLinkRequest[] }[] = [];
  down = false;
  readonly workflow = {
    start: async (_workflow: unknown, options: { workflowId: string; args: PasswordLinkRequest[] }) => {
      if (this.down) throw new Error('Temporal unreachable');
      this.started.push({ workflowId: options.workflowId, args: options.args });
      return {};
    },
  };
}
