import { eq, lt, sql } from 'drizzle-orm'
import { tokenBlocklist, users } from '../../drizzle/schema.js'
import { isDuplicateKey } from '../db/errors.js'
import type { Database } from '../db/database.js'
import type { User } from '../schemas/shared.js'

export type BlocklistKind = 'access' | 'refresh' | 'session'

export interface BlocklistEntry {
  jti: string
  kind: BlocklistKind
  user_id: number
  expires_at: Date
}

/** Everything the per-request token check needs, from one round trip. Null: the user is gone. */
export interface TokenState {
  /** The user as they are now (the role for authorization comes from here, not the token). */
  user: User
  tokensValidAfter: Date | null
  keptSessionId: string | null
  /** When this token's jti was blocklisted (for a refresh token: when it was rotated). */
  tokenRevokedAt: Date | null
  sessionRevoked: boolean
}

export function createTokensRepository (db: Database) {
  // One statement, three primary-key probes: the user row and two blocklist lookups. This runs
  // on every authenticated request, so it is a prepared statement.
  const tokenState = db.select({
    user: { id: users.id, email: users.email, name: users.name, role: users.role, created_at: users.created_at, updated_at: users.updated_at },
    tokensValidAfter: users.tokens_valid_after,
    keptSessionId: users.kept_session_id,
    tokenRevokedAt: sql<Date | null>`(select ${tokenBlocklist.created_at} from ${tokenBlocklist} where ${tokenBlocklist.jti} = ${sql.placeholder('jti')})`.mapWith(tokenBlocklist.created_at),
    sessionRevoked: sql<boolean>`exists(select 1 from ${tokenBlocklist} where ${tokenBlocklist.jti} = ${sql.placeholder('sid')})`.mapWith(Boolean),
  }).from(users).where(eq(users.id, sql.placeholder('userId'))).prepare()

  return {
    async findTokenState (userId: number, jti: string, sid: string): Promise<TokenState | null> {
      const [row] = await tokenState.execute({ userId, jti, sid })
      return row ?? null
    },

    /** Blocklists the entries; ones already there stay as they are. */
    async revoke (entries: BlocklistEntry[]): Promise<void> {
      await db.insert(tokenBlocklist).ignore().values(entries)
    },

    /**
     * Blocklists a refresh token's jti as the gate of its rotation. The primary key makes this
     * atomic: of concurrent rotations of one token exactly one insert succeeds (true).
     */
    async claimRotation (entry: Omit<BlocklistEntry, 'kind'>): Promise<boolean> {
      try {
        await db.insert(tokenBlocklist).values({ ...entry, kind: 'refresh' })
        return true
      } catch (error) {
        if (isDuplicateKey(error)) return false
        throw error
      }
    },

    /**
     * Deletes expired rows; they can no longer match a token that verifies. In batches, so a
     * large backlog never holds locks (or runs past the query timeout) in one statement.
     */
    async purgeExpired (now = new Date(), batchSize = 5000): Promise<number> {
      let total = 0
      for (;;) {
        const [result] = await db.delete(tokenBlocklist).where(lt(tokenBlocklist.expires_at, now)).limit(batchSize)
        total += result.affectedRows
        if (result.affectedRows < batchSize) return total
      }
    },
  }
}
