import { lt } from 'drizzle-orm'
import { tokenBlocklist } from '../../drizzle/schema.js'
import { createBatchLoader, MAX_BATCH_SIZE, statementsBySize } from '../db/batch.js'
import { isDuplicateKey } from '../db/errors.js'
import { isConflict } from '../db/cluster.js'
import type { Pool } from 'mysql2/promise'
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

interface TokenStateRow {
  i: number
  id: number
  email: string
  name: string
  role: User['role']
  created_at: Date
  updated_at: Date
  tokens_valid_after: Date | null
  kept_session_id: string | null
  token_revoked_at: Date | null
  session_revoked: number
}

interface TokenKey {
  userId: number
  jti: string
  sid: string
}

/**
 * The token check of n tokens in one statement: a derived table of (i, user id, jti, sid), one
 * primary-key probe into users and two into token_blocklist per row. A token whose user is gone
 * has no row. One statement text per n, so each is prepared once per connection.
 *
 * The form fixes the plan (issue 12): STRAIGHT_JOIN reads the batch's keys first and FORCE INDEX
 * makes each users row a primary-key probe. Left to the statistics, MariaDB scanned a small
 * users table whole and probed the keys from it; the blocklist is probed from correlated
 * subqueries, which run per key and cannot be turned into a scan.
 */
function tokenStateStatement (count: number): string {
  const tokens = Array.from({ length: count }, (_, i) => i === 0 ? 'SELECT ? AS i, ? AS user_id, ? AS jti, ? AS sid' : 'SELECT ?, ?, ?, ?')
  return 'SELECT q.i, u.id, u.email, u.name, u.role, u.created_at, u.updated_at, u.tokens_valid_after, u.kept_session_id, ' +
    '(SELECT b.created_at FROM token_blocklist b FORCE INDEX (PRIMARY) WHERE b.jti = q.jti) AS token_revoked_at, ' +
    'EXISTS (SELECT 1 FROM token_blocklist b FORCE INDEX (PRIMARY) WHERE b.jti = q.sid) AS session_revoked ' +
    `FROM (${tokens.join(' UNION ALL ')}) AS q STRAIGHT_JOIN users u FORCE INDEX (PRIMARY) ON u.id = q.user_id`
}

const tokenStateStatements = statementsBySize(MAX_BATCH_SIZE, tokenStateStatement)

export function createTokensRepository (db: Database, pool: Pool) {

  // Runs on every authenticated request: the checks of all requests that arrive together share
  // one statement (see db/batch.ts).
  const findTokenState = createBatchLoader(async (keys: readonly TokenKey[]): Promise<(TokenState | null)[]> => {
    const [rows] = await pool.execute(tokenStateStatements[keys.length]!, keys.flatMap((key, i) => [i, key.userId, key.jti, key.sid]))
    const states: (TokenState | null)[] = keys.map(() => null)
    for (const row of rows as TokenStateRow[]) {
      states[row.i] = {
        user: { id: row.id, email: row.email, name: row.name, role: row.role, created_at: row.created_at, updated_at: row.updated_at },
        tokensValidAfter: row.tokens_valid_after,
        keptSessionId: row.kept_session_id,
        tokenRevokedAt: row.token_revoked_at,
        sessionRevoked: Boolean(row.session_revoked),
      }
    }
    return states
  }, { keyOf: (key) => key.jti })

  return {
    /** The state of a token and its user, read in one round trip; null when the user is gone. */
    findTokenState (userId: number, jti: string, sid: string): Promise<TokenState | null> {
      return findTokenState({ userId, jti, sid })
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
        // On a Galera cluster a rotation through another node that committed first shows as a
        // certification conflict (1213) rather than a duplicate key: the race is lost all the same.
        if (isConflict(error)) return false
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
