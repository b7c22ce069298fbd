import { and, asc, eq, isNull, ne, sql } from 'drizzle-orm'
import { signingKeys } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { isDuplicateKey } from '../db/errors.js'
import { bumpCounter, readCounter } from './change-counters.js'
import { NO_CONTEXT, type Effects } from './events.js'

export type SigningKeyRow = typeof signingKeys.$inferSelect
export type NewSigningKey = Pick<typeof signingKeys.$inferInsert, 'kid' | 'algorithm' | 'generation' | 'public_jwk' | 'private_key' | 'activates_at'>

// None of these statements is on the request path: the key ring reads them on a timer, the CLI
// and start-up write them. The table holds a handful of rows (one per rotation).
export function createSigningKeysRepository (db: Database, { record }: Pick<Effects, 'record'>) {
  return {
    /**
     * Whether anything changed since the last poll, in one primary-key read: every write below
     * bumps the `signing_keys` counter in its own transaction, so no change can be missed, as
     * COUNT(*) and MAX(updated_at) could miss a revocation written by a node whose clock lags.
     */
    async version (): Promise<string> {
      return String(await readCounter(db, 'signing_keys'))
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
        await db.transaction(async (tx) => {
          await tx.insert(signingKeys).values(key)
          await bumpCounter(tx as unknown as Database, 'signing_keys')
        })
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
        await bumpCounter(tx as unknown as Database, 'signing_keys')
        // The operator's CLI: no request, no actor.
        await record(tx as unknown as Database, { type: 'signing_key.rotated', subject_user_id: null, context: NO_CONTEXT, details: { kid: key.kid, algorithm: key.algorithm } })
      })
    },

    /** Primary-key update. False: no such kid, or it was already revoked. */
    async revoke (kid: string): Promise<boolean> {
      return db.transaction(async (tx) => {
        const [result] = await tx.update(signingKeys)
          .set({ revoked_at: sql`CURRENT_TIMESTAMP(3)` })
          .where(and(eq(signingKeys.kid, kid), isNull(signingKeys.revoked_at)))
        if (result.affectedRows === 0) return false
        await bumpCounter(tx as unknown as Database, 'signing_keys')
        await record(tx as unknown as Database, { type: 'signing_key.revoked', subject_user_id: null, context: NO_CONTEXT, details: { kid } })
        return true
      })
    },
  }
}

export type SigningKeysRepository = ReturnType<typeof createSigningKeysRepository>
