import { defineEntity, type InferEntity } from '@mikro-orm/core';

/**
 * A revocation in force: every token of a user issued before `notBefore`, or every token of
 * one session. Kept until every token it covers has expired.
 */
export const RevocationSchema = defineEntity({
  name: 'Revocation',
  tableName: 'revocation',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    userId: p.uuid().nullable().fieldName('user_id'),
    sessionId: p.string().length(100).nullable().fieldName('session_id'),
    notBefore: p.datetime().fieldName('not_before'),
    expiresAt: p.datetime().fieldName('expires_at'),
  }),
});

export type Revocation = InferEntity<typeof RevocationSchema>;
