import { defineEntity, type InferEntity } from '@mikro-orm/core';

/**
 * A single-use token mailed to set or reset a password. Only its SHA-256 digest is stored.
 */
export const PasswordTokenSchema = defineEntity({
  name: 'PasswordToken',
  tableName: 'password_token',
  properties: (p) => ({
    digest: p.string().length(64).primary(),
    userId: p.uuid().fieldName('user_id'),
    purpose: p.string().length(16).$type<'set' | 'reset'>(),
    expiresAt: p.datetime().fieldName('expires_at'),
    usedAt: p.datetime().nullable().fieldName('used_at'),
    createdAt: p.datetime().fieldName('created_at'),
    /** The delivery request that made it, when it was sent later through Temporal. */
    requestId: p.string().length(200).nullable().fieldName('request_id'),
    /** When its e-mail went out (deliveries through Temporal). */
    mailedAt: p.datetime().nullable().fieldName('mailed_at'),
  }),
});

export type PasswordToken = InferEntity<typeof PasswordTokenSchema>;
