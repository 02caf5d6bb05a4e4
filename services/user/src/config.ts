import { z } from 'zod';
import { baseConfigShape, databaseConfigShape, parseConfig, port, serviceKeyConfigShape, serviceKeyDevSecret } from '@gef/common';

export const configShape = {
  ...baseConfigShape,
  PORT: port(50051),
  METRICS_PORT: port(9101),
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/gef_user'),
  ...databaseConfigShape,
  ...serviceKeyConfigShape,
  KEYCLOAK_URL: z.string().url().default('http://127.0.0.1:8080'),
  KEYCLOAK_REALM: z.string().min(1).default('gef'),
  KEYCLOAK_CLIENT_ID: z.string().min(1).default('gef-api'),
  KEYCLOAK_CLIENT_SECRET: z.string().min(1).default('gef-api-dev-secret'),
  SMTP_HOST: z.string().min(1).default('127.0.0.1'),
  SMTP_PORT: port(1025),
  /** A relay that asks for a login (port 587 mostly): both, sent only over TLS unless SMTP_TLS says otherwise. */
  SMTP_USER: z.string().min(1).optional(),
  SMTP_PASSWORD: z.string().min(1).optional(),
  /**
   * `opportunistic`: STARTTLS when the relay offers it (not on 127.0.0.1); `starttls`: STARTTLS
   * or no e-mail (port 587); `tls`: TLS from the first byte (port 465). Unset: `starttls`
   * with SMTP_USER, else `opportunistic`.
   */
  SMTP_TLS: z.enum(['opportunistic', 'starttls', 'tls']).optional(),
  MAIL_FROM: z.string().min(3).default('GEF API <no-reply@gef.local>'),
  PUBLIC_URL: z.string().url().default('http://localhost:3000'),
  /** The page password e-mails link to (a web client's); unset, the gateway's own `PUBLIC_URL/reset-password`. */
  PASSWORD_LINK_URL: z.string().url().optional(),
  GEF_ADMIN_EMAIL: z.string().email().default('admin@gef.local'),
  GEF_ADMIN_PASSWORD: z.string().min(12).default('Admin-Dev-Passw0rd!'),
  ACCESS_TOKEN_LIFETIME_SECONDS: z.coerce.number().int().positive().default(3600),
  /** How often Keycloak's admin events are read (changes made in its console revoke tokens). */
  KEYCLOAK_EVENTS_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(500),
};

export type UserConfig = ReturnType<typeof loadConfig>;

/** The user service's configuration, from the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env, [
    { name: 'KEYCLOAK_CLIENT_SECRET', devValue: 'gef-api-dev-secret' },
    { name: 'GEF_ADMIN_PASSWORD', devValue: 'Admin-Dev-Passw0rd!' },
    { name: 'GEF_ADMIN_EMAIL', devValue: 'admin@gef.local' },
    serviceKeyDevSecret,
  ]);
}
