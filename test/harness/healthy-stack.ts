/**
 * Before each e2e file: the shared stack answers /api-health 200. A file before it may have
 * stopped, killed or restarted a part; this one starts once everything is back, or fails
 * saying what is still down.
 */
import { apiUrl } from './stack';

beforeAll(async () => {
  const deadline = Date.now() + 180_000;
  let last = '';
  for (;;) {
    const res = await fetch(`${apiUrl()}/api-health`).catch((err: unknown) => err as Error);
    if (!(res instanceof Error) && res.status === 200) return;
    last = res instanceof Error ? res.message : `${res.status} ${(await res.text()).slice(0, 300)}`;
    if (Date.now() > deadline) throw new Error(`the stack is not healthy: ${last}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}, 200_000);
