/** The size of one purge statement: small enough to hold its locks briefly and finish well within the query timeout. */
export const PURGE_BATCH_SIZE = 5000

/**
 * Runs `deleteBatch` (a DELETE … LIMIT `batchSize`) until a run deletes fewer rows than that, and
 * returns how many went in all. A large backlog is then many short statements, never one that
 * holds locks (or runs past the query timeout) for the whole table.
 */
export async function deleteInBatches (deleteBatch: (limit: number) => Promise<[{ affectedRows: number }, ...unknown[]]>,
  batchSize = PURGE_BATCH_SIZE): Promise<number> {
  let total = 0
  for (;;) {
    const [result] = await deleteBatch(batchSize)
    total += result.affectedRows
    if (result.affectedRows < batchSize) return total
  }
}
