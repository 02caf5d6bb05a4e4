/**
 * Calls `each` for every item, `size` at a time, and returns the answers in the items'
 * order: a list embedding something per row (a user's scripts, a script's executions) asks
 * the services about a page of up to 1,000 rows without opening a thousand calls at once.
 */
export async function inBatches<T, R>(items: readonly T[], size: number, each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(each))));
  return out;
}
