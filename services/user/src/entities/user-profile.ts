import { defineEntity, type InferEntity } from '@mikro-orm/core';

/**
 * A user's profile. The id is the Keycloak user id; credentials and roles live in
 * Keycloak only.
 */
export const UserProfileSchema = defineEntity({
  name: 'UserProfile',
  tableName: 'user_profile',
  properties: (p) => ({
    id: p.uuid().primary(),
    email: p.string().length(320).unique(),
    name: p.string().length(1000),
    country: p.string().length(200).default(''),
    institution: p.string().length(1000).default(''),
    /** Opted in to an e-mail when one of their runs reaches a terminal status. */
    emailNotificationsEnabled: p.boolean().default(false).fieldName('email_notifications_enabled'),
    createdAt: p.datetime().fieldName('created_at'),
    updatedAt: p.datetime().fieldName('updated_at'),
  }),
});

export type UserProfile = InferEntity<typeof UserProfileSchema>;
