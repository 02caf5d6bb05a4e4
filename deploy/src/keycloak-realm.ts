import { KEYCLOAK_CLIENT_ID, KEYCLOAK_REALM, type StackConfig } from './config';

/**
 * Realm settings that depend on this run (the SMTP port, the client secret) are written
 * by the import only when the realm is created. After every start the launcher puts them
 * right through the admin API with the bootstrap admin, so a changed MAILDEV_SMTP_PORT or
 * KEYCLOAK_CLIENT_SECRET (or a copied database) takes effect. Returns what it changed.
 */
export async function reconcileRealm(config: StackConfig): Promise<string[]> {
  const base = `http://127.0.0.1:${config.ports.keycloak}`;
  const tokenResponse = await fetch(`${base}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: config.settings.keycloakAdmin,
      password: config.settings.keycloakAdminPassword,
    }),
  });
  if (!tokenResponse.ok) throw new Error(`the Keycloak admin login (${config.settings.keycloakAdmin}) failed with ${tokenResponse.status}`);
  const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
  const admin = async <T>(path: string, init: RequestInit = {}): Promise<T | undefined> => {
    const response = await fetch(`${base}/admin/realms/${KEYCLOAK_REALM}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    if (!response.ok) throw new Error(`Keycloak admin ${init.method ?? 'GET'} ${path} answered ${response.status}`);
    return response.status === 204 ? undefined : ((await response.json()) as T);
  };
  const changed: string[] = [];
  const realm = await admin<{ smtpServer?: Record<string, string> }>('');
  const smtp = realm?.smtpServer ?? {};
  const host = '127.0.0.1';
  const port = String(config.ports.maildevSmtp);
  if (smtp.host !== host || smtp.port !== port) {
    await admin('', { method: 'PUT', body: JSON.stringify({ smtpServer: { ...smtp, host, port } }) });
    changed.push(`SMTP server ${host}:${port}`);
  }
  const clients = (await admin<{ id: string }[]>(`/clients?clientId=${KEYCLOAK_CLIENT_ID}`)) ?? [];
  const client = clients[0];
  if (client !== undefined) {
    const secret = await admin<{ value?: string }>(`/clients/${client.id}/client-secret`);
    if (secret?.value !== config.settings.keycloakClientSecret) {
      await admin(`/clients/${client.id}`, { method: 'PUT', body: JSON.stringify({ secret: config.settings.keycloakClientSecret }) });
      changed.push(`${KEYCLOAK_CLIENT_ID} client secret`);
    }
    // The user service follows the realm's admin events (changes made in the console revoke
    // tokens) and keeps them switched on, and reads who holds a client role that includes a
    // platform role: realms imported before it did need these roles.
    const serviceAccount = await admin<{ id: string }>(`/clients/${client.id}/service-account-user`);
    const management = ((await admin<{ id: string }[]>('/clients?clientId=realm-management')) ?? [])[0];
    if (serviceAccount && management) {
      const held = (await admin<{ name: string }[]>(`/users/${serviceAccount.id}/role-mappings/clients/${management.id}`)) ?? [];
      for (const name of ['manage-events', 'view-clients']) {
        if (held.some((r) => r.name === name)) continue;
        const role = await admin<{ id: string; name: string }>(`/clients/${management.id}/roles/${name}`);
        await admin(`/users/${serviceAccount.id}/role-mappings/clients/${management.id}`, { method: 'POST', body: JSON.stringify([role]) });
        changed.push(`${KEYCLOAK_CLIENT_ID} service account given ${name}`);
      }
    }
  }
  const events = await admin<Record<string, unknown>>('/events/config');
  if (events && (events['adminEventsEnabled'] !== true || events['adminEventsDetailsEnabled'] !== true)) {
    await admin('/events/config', { method: 'PUT', body: JSON.stringify({ ...events, adminEventsEnabled: true, adminEventsDetailsEnabled: true }) });
    changed.push('admin events with representations');
  }
  return changed;
}
