/**
 * The stack the benchmarks run on: started through the launcher (on free ports, in a data
 * dir of the caller's) with the rate limits lifted, so the loads measure the work and not
 * the limiter; and the first calls every benchmark makes on it.
 */
import { freeStackPorts, startStack, type Stack } from '@gef/deploy';

export const ADMIN = { email: 'admin@gef.local', password: 'Admin-Dev-Passw0rd!' } as const;

export async function startBenchStack(dataDir: string, ports: Awaited<ReturnType<typeof freeStackPorts>>): Promise<{ stack: Stack; ms: number }> {
  const began = Date.now();
  const stack = await startStack({ dataDir, ports, env: { GEF_ENV: 'test', LOG_LEVEL: 'warn', RATE_LIMIT_LOGIN_PER_CLIENT: '1000000/60', RATE_LIMIT_LOGIN_PER_ACCOUNT: '1000000/60', RATE_LIMIT_REGISTER_PER_CLIENT: '1000000/3600', RATE_LIMIT_RUN_PER_ACCOUNT: '1000000/60', RATE_LIMIT_RUN_PER_CLIENT: '1000000/60', RATE_LIMIT_REFRESH_PER_SESSION: '1000000/60', RATE_LIMIT_UPLOAD_PER_ACCOUNT: '1000000/60', RATE_LIMIT_UPLOAD_PER_CLIENT: '1000000/60' }, onStatus: () => undefined });
  return { stack, ms: Date.now() - began };
}

export async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const res = await fetch(`${url}/api-health`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('stack never became healthy');
}

export async function login(api: string, email: string, password: string): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const res = await fetch(`${api}/auth`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password }) });
    if (res.status === 200) return ((await res.json()) as { access_token: string }).access_token;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('cannot log in');
}
