import { create } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { user } from '@gef/protos';
import type { OwnerNotices } from '../domain/owner-notices';

interface Entry {
  wants: boolean;
  until: number;
}

/**
 * Owners' e-mail opt-ins read from the user service (GetUser `me` as the owner), kept for
 * `ttlMs`: a burst of runs of one user asks once. An opt-in made meanwhile applies to runs
 * accepted after the entry expires; an opt-out applies at once, since the user service
 * checks again before sending. When the user service cannot answer, the answer is true
 * (the decision is left to the end of the run).
 */
export class UserServiceNotices implements OwnerNotices {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<boolean>>();

  constructor(
    private readonly client: Pick<Client<typeof user.UserService>, 'getUser'>,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async wantsMail(userId: string): Promise<boolean> {
    const entry = this.entries.get(userId);
    if (entry && entry.until > this.now()) return entry.wants;
    let pending = this.loading.get(userId);
    if (!pending) {
      pending = this.load(userId).finally(() => this.loading.delete(userId));
      this.loading.set(userId, pending);
    }
    return pending;
  }

  private async load(userId: string): Promise<boolean> {
    try {
      const reply = await this.client.getUser(
        create(user.GetUserRequestSchema, { idOrEmail: 'me', caller: create(user.CallerSchema, { userId, role: user.Role.USER }) }),
        { timeoutMs: 2000 },
      );
      const wants = reply.user?.emailNotificationsEnabled ?? true;
      this.entries.delete(userId);
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(userId, { wants, until: this.now() + this.ttlMs });
      return wants;
    } catch {
      return true;
    }
  }
}
