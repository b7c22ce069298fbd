import { lt } from 'drizzle-orm'
import { tokenBlocklist } from '../../drizzle/schema.js'
import { createBatchLoader, MAX_BATCH_SIZE, statementsBySize } from '../db/batch.js'
import type { Pool } from 'mysql2/promise'
import type { Database } from '../db/database.js'
import type { MfaStatus, User } from '../schemas/shared.js'
import { deleteInBatches } from '../db/delete-in-batches.js'

/** Everything the per-request token check needs, from one round trip. Null: the user is gone. */
export interface TokenState {
  /** The user as they are now (the role for authorization comes from here, not the token). */
  user: User
  /** The user's second factors, as GET /me shows them (API.md §13). */
  mfa: MfaStatus
  /** When this token's jti was blocklisted (for a refresh token: when it was rotated). */
  tokenRevokedAt: Date | null
  sessionRevoked: boolean
  /** How the session's login was proved (RFC 8176), from its row: `['pwd']` or `['pwd', 'otp']`; empty when revoked. */
  amr: string[]
}

interface TokenStateRow {
  i: number
  id: number
  email: string
  name: string
  role: User['role']
  email_verified_at: Date | null
  created_at: Date
  updated_at: Date
  token_revoked_at: Date | null
  /** The live session's amr; null when the session is missing, ended or cut off. */
  session_amr: string | null
  totp: number
  passkeys: number | string
  recovery_codes_left: number
}

interface TokenKey {
  userId: number
  jti: string
  sid: string
}

/**
 * The token check of n tokens in one statement: a derived table of (i, user id, jti, sid), one
 * primary-key probe each into users, token_blocklist (jti), sessions (sid) and totp_credentials
 * per row, a range of at most ten recovery codes and one of at most 25 passkeys. A token whose user is gone has no row. A
 * few statement texts (db/batch.ts), each prepared once per connection.
 *
 * The form fixes the plan (issue 12): STRAIGHT_JOIN reads the batch's keys first and FORCE INDEX
 * makes each users row a primary-key probe. Left to the statistics, MariaDB scanned a small
 * users table whole and probed the keys from it; the blocklist, the session and the second factors
 * are probed from correlated subqueries, which run per key and cannot be turned into a scan.
 */
function tokenStateStatement (count: number): string {
  const tokens = Array.from({ length: count }, (_, i) => i === 0 ? 'SELECT ? AS i, ? AS user_id, ? AS jti, ? AS sid' : 'SELECT ?, ?, ?, ?')
  return 'SELECT q.i, u.id, u.email, u.name, u.role, u.email_verified_at, u.created_at, u.updated_at, ' +
    '(SELECT b.created_at FROM token_blocklist b FORCE INDEX (PRIMARY) WHERE b.jti = q.jti) AS token_revoked_at, ' +
    // The session row by its primary key, and with it how its login was proved: no amr when it is
    // missing (never started, purged), ended, or cut off (a generation other than the user's:
    // drizzle/users.ts), which is a revoked session.
    '(SELECT s.amr FROM sessions s FORCE INDEX (PRIMARY) WHERE s.id = q.sid AND s.user_id = q.user_id AND s.ended_at IS NULL ' +
    'AND s.generation = u.session_generation) AS session_amr, ' +
    // GET /me's second factors (API.md §13): the TOTP row by its primary key, and the unused
    // recovery codes among the user's ten at most, on recovery_codes_user_hash_unique's prefix.
    '(SELECT t.enabled_at IS NOT NULL FROM totp_credentials t FORCE INDEX (PRIMARY) WHERE t.user_id = u.id) AS totp, ' +
    '(SELECT COUNT(*) FROM recovery_codes r FORCE INDEX (recovery_codes_user_hash_unique) WHERE r.user_id = u.id AND r.used_at IS NULL) AS recovery_codes_left, ' +
    // And the user's passkeys (at most 25: MAX_PASSKEYS_PER_USER), on passkeys_user_id_id_idx's prefix.
    '(SELECT COUNT(*) FROM passkeys p FORCE INDEX (passkeys_user_id_id_idx) WHERE p.user_id = u.id) AS passkeys ' +
    `FROM (${tokens.join(' UNION ALL ')}) AS q STRAIGHT_JOIN users u FORCE INDEX (PRIMARY) ON u.id = q.user_id`
}

const tokenStateStatements = statementsBySize(MAX_BATCH_SIZE, tokenStateStatement)

export function createTokensRepository (db: Database, pool: Pool) {

  // Runs on every authenticated request: the checks of all requests that arrive together share
  // one statement (see db/batch.ts).
  const findTokenState = createBatchLoader(async (keys: readonly TokenKey[]): Promise<(TokenState | null)[]> => {
    const { sql, size } = tokenStateStatements(keys.length)
    // Padded with keys of user 0, which no user has (ids start at 1): they join no row.
    const padded = [...keys, ...Array<TokenKey>(size - keys.length).fill({ userId: 0, jti: '', sid: '' })]
    const [rows] = await pool.execute(sql, padded.flatMap((key, i) => [i, key.userId, key.jti, key.sid]))
    const states: (TokenState | null)[] = keys.map(() => null)
    for (const row of rows as TokenStateRow[]) {
      states[row.i] = {
        user: { id: row.id, email: row.email, name: row.name, role: row.role, email_verified_at: row.email_verified_at, created_at: row.created_at, updated_at: row.updated_at },
        mfa: { totp: Boolean(row.totp), passkeys: Number(row.passkeys), recovery_codes_left: Number(row.recovery_codes_left) },
        tokenRevokedAt: row.token_revoked_at,
        sessionRevoked: row.session_amr === null,
        amr: row.session_amr?.split(',') ?? [],
      }
    }
    return states
  }, { keyOf: (key) => key.jti })

  return {
    /** The state of a token and its user, read in one round trip; null when the user is gone. */
    findTokenState (userId: number, jti: string, sid: string): Promise<TokenState | null> {
      return findTokenState({ userId, jti, sid })
    },

    /**
     * Deletes expired rows; they can no longer match a token that verifies. In batches, so a
     * large backlog never holds locks (or runs past the query timeout) in one statement.
     */
    purgeExpired (now = new Date(), batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(tokenBlocklist).where(lt(tokenBlocklist.expires_at, now)).limit(limit), batchSize)
    },
  }
}
