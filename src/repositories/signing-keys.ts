import { and, asc, count, eq, isNull, max, ne, sql } from 'drizzle-orm'
import { signingKeys } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { isDuplicateKey } from '../db/errors.js'

export type SigningKeyRow = typeof signingKeys.$inferSelect
export type NewSigningKey = Pick<typeof signingKeys.$inferInsert, 'kid' | 'algorithm' | 'generation' | 'public_jwk' | 'private_key' | 'activates_at'>

// None of these statements is on the request path: the key ring reads them on a timer, the CLI
// and start-up write them. The table holds a handful of rows (one per rotation).
export function createSigningKeysRepository (db: Database) {
  return {
    /**
     * What changed since the last poll, in one cheap statement: MAX walks the end of
     * signing_keys_updated_at_idx, COUNT(*) an index of a table of a few rows.
     */
    async version (): Promise<string> {
      const [row] = await db.select({ rows: count(), latest: max(signingKeys.updated_at) }).from(signingKeys)
      return `${row?.rows ?? 0}:${row?.latest?.getTime() ?? 0}`
    },

    /** Every key of one algorithm (the unique key's prefix), oldest first. */
    async list (algorithm?: string): Promise<SigningKeyRow[]> {
      const query = db.select().from(signingKeys)
      return (algorithm ? query.where(eq(signingKeys.algorithm, algorithm)) : query)
        .orderBy(asc(signingKeys.algorithm), asc(signingKeys.generation))
    },

    /** False when another instance inserted this generation first (it wins; ours is dropped). */
    async insert (key: NewSigningKey): Promise<boolean> {
      try {
        await db.insert(signingKeys).values(key)
        return true
      } catch (error) {
        if (isDuplicateKey(error)) return false
        throw error
      }
    },

    /**
     * The new key and the retirement of the keys it replaces, in one transaction: no instance
     * reads a new key while the old ones still look as if they signed forever. A concurrent
     * rotation takes the same generation and fails on the unique key.
     */
    async rotate (key: NewSigningKey, retiresAt: Date): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.update(signingKeys)
          .set({ retires_at: retiresAt })
          .where(and(eq(signingKeys.algorithm, key.algorithm), isNull(signingKeys.retires_at), ne(signingKeys.kid, key.kid)))
        await tx.insert(signingKeys).values(key)
      })
    },

    /** Primary-key update. False: no such kid, or it was already revoked. */
    async revoke (kid: string): Promise<boolean> {
      const [result] = await db.update(signingKeys)
        .set({ revoked_at: sql`CURRENT_TIMESTAMP(3)` })
        .where(and(eq(signingKeys.kid, kid), isNull(signingKeys.revoked_at)))
      return result.affectedRows > 0
    },
  }
}

export type SigningKeysRepository = ReturnType<typeof createSigningKeysRepository>
