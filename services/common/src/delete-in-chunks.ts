/**
 * Rows (a run's or a script's log lines) deleted per statement before their parent rows:
 * a parent may hold millions, more than one statement may take within the database's time
 * limit or one transaction should hold.
 */
export const rowsPerDelete = 20_000;

/**
 * Calls `deleteSome` (one statement deleting at most a chunk of rows, resolving to how many
 * it deleted) until it deletes none, and `onChunk` after each; resolves to the rows deleted.
 * Statements skip rows another deleter holds (an earlier attempt still running), so two
 * take different chunks; one stops on none rather than on a short chunk, and what the other
 * held at most goes with the parent rows.
 */
export async function deleteInChunks(deleteSome: () => Promise<number>, onChunk: () => void = () => undefined): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deleteSome();
    onChunk();
    if (n === 0) return total;
    total += n;
  }
}
