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
    /**
     * The request that made it: a registration's, or a delivery through Temporal. A request
     * retried after a try whose e-mail may have gone out holds a token per such try.
     */
    requestId: p.string().length(200).nullable().fieldName('request_id'),
    /** When its e-mail was known to have gone out. */
    mailedAt: p.datetime().nullable().fieldName('mailed_at'),
  }),
});

export type PasswordToken = InferEntity<typeof PasswordTokenSchema>;
