/**
 * `promise`, or a rejection with `message` when it has not settled within `ms`. The timer is
 * cleared either way; a late rejection of `promise` is left handled.
 */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}
