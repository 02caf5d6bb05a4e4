import type { EntityManager } from '@gef/common/orm';
import { UserProfileSchema, type UserProfile } from '../entities/user-profile';

/** User profiles in the service's own database. */
export class UserProfileRepository {
  constructor(private readonly em: EntityManager) {}

  findById(id: string): Promise<UserProfile | null> {
    return this.em.findOne(UserProfileSchema, { id });
  }

  findByEmail(email: string): Promise<UserProfile | null> {
    return this.em.findOne(UserProfileSchema, { email: email.toLowerCase() });
  }

  async page(page: number, perPage: number): Promise<{ items: UserProfile[]; total: number }> {
    const [items, total] = await this.em.findAndCount(
      UserProfileSchema,
      {},
      { orderBy: { createdAt: 'asc', id: 'asc' }, limit: perPage, offset: (page - 1) * perPage },
    );
    return { items, total };
  }

  create(input: {
    id: string;
    email: string;
    name: string;
    country?: string;
    institution?: string;
    emailNotificationsEnabled?: boolean;
  }): UserProfile {
    const now = new Date();
    return this.em.create(UserProfileSchema, {
      id: input.id,
      email: input.email.toLowerCase(),
      name: input.name,
      country: input.country ?? '',
      institution: input.institution ?? '',
      emailNotificationsEnabled: input.emailNotificationsEnabled ?? false,
      createdAt: now,
      updatedAt: now,
    });
  }

  /** Deletes a profile; false when there was none. */
  async deleteById(id: string): Promise<boolean> {
    const deleted = await this.em.nativeDelete(UserProfileSchema, { id });
    return deleted > 0;
  }
}
