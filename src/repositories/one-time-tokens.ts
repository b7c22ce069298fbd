import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { and, count, eq, gt, isNull, lt, sql } from 'drizzle-orm'
import { oneTimeTokens, users } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import { rolledBackAs } from '../db/errors.js'
import { cutOffSessions } from './sessions.js'
import type { Effects, EventContext } from './events.js'

export type TokenPurpose = 'password_reset' | 'email_verification'

/** A token that checked out: the row to spend, and whose it is. */
export interface LiveToken {
  id: number
  userId: number
  email: string
}

const SELECTOR_BYTES = 16
// 256 random bits in the secret part alone: API.md §10 asks for at least 128.
const VERIFIER_BYTES = 32
const TOKEN = /^[A-Za-z0-9_-]{64}$/
const HOUR_MS = 3_600_000

const now = sql`CURRENT_TIMESTAMP(3)`
const inFuture = (ms: number) => sql`CURRENT_TIMESTAMP(3) + INTERVAL ${ms * 1000} MICROSECOND`

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest()

/** The two halves of a token as sent to the user: base64url(selector ‖ verifier). */
function splitToken (token: string): { selector: string, verifier: Buffer } | null {
  if (!TOKEN.test(token)) return null
  const bytes = Buffer.from(token, 'base64url')
  if (bytes.length !== SELECTOR_BYTES + VERIFIER_BYTES) return null
  return { selector: bytes.subarray(0, SELECTOR_BYTES).toString('hex'), verifier: bytes.subarray(SELECTOR_BYTES) }
}

// Compared against when no row matched, so a miss and a wrong verifier cost the same work.
const DUMMY_HASH = Buffer.alloc(32)


// READ COMMITTED for the transactions that write tokens: under REPEATABLE READ, the UPDATEs by
// (user_id, purpose) take gap locks on the index, and two users' concurrent requests then
// deadlock on each other's INSERT (seen in bench/forgot-timing.ts). The user's row lock, taken
// first, is what serialises the requests of one user; nothing here needs gap locks.
const WRITE_TOKENS = { isolationLevel: 'read committed' } as const

export function createOneTimeTokensRepository (db: Database, { record, enqueueMail }: Effects) {
  /** Spends the token: the single-use gate. Only one of concurrent uses changes the row. */
  async function spend (tx: Database, id: number): Promise<boolean> {
    // one_time_tokens primary key.
    const [result] = await tx.update(oneTimeTokens).set({ spent_at: now })
      .where(and(eq(oneTimeTokens.id, id), isNull(oneTimeTokens.spent_at), gt(oneTimeTokens.expires_at, now)))
    return result.affectedRows === 1
  }

  return {
    /**
     * A new token for the user's current email, or null when `maxPerHour` tokens of this purpose
     * were issued for the user in the last hour (the per-email mail cap). Older unspent tokens of
     * the purpose are voided: only the newest link works. `within` runs in the same transaction
     * with the new token (the outbox stores the mail that carries it there); if it throws, no
     * token was issued.
     */
    async issue (
      { purpose, userId, email, ttl, maxPerHour }: { purpose: TokenPurpose, userId: number, email: string, ttl: number, maxPerHour: number },
      within?: (tx: Database, token: string) => Promise<void>,
    ): Promise<string | null> {
      const selector = randomBytes(SELECTOR_BYTES)
      const verifier = randomBytes(VERIFIER_BYTES)
      return db.transaction(async (tx) => {
        // Locks the user's row (primary key): concurrent requests for one user queue here, so the
        // count below cannot be outrun and two "newest" tokens cannot both survive.
        const [user] = await tx.select({ email: users.email }).from(users).where(eq(users.id, userId)).for('update')
        if (!user || user.email !== email) return null
        const ofPurpose = and(eq(oneTimeTokens.user_id, userId), eq(oneTimeTokens.purpose, purpose))
        // one_time_tokens_user_purpose_created_idx: a range of at most an hour's tokens.
        const [issued] = await tx.select({ n: count() }).from(oneTimeTokens)
          .where(and(ofPurpose, gt(oneTimeTokens.created_at, sql`CURRENT_TIMESTAMP(3) - INTERVAL ${HOUR_MS * 1000} MICROSECOND`)))
        if (issued!.n >= maxPerHour) return null
        // Same index, by (user_id, purpose) prefix.
        await tx.update(oneTimeTokens).set({ spent_at: now }).where(and(ofPurpose, isNull(oneTimeTokens.spent_at)))
        await tx.insert(oneTimeTokens).values({
          purpose,
          user_id: userId,
          email,
          selector: selector.toString('hex'),
          verifier_hash: sha256(verifier).toString('hex'),
          expires_at: inFuture(ttl),
        })
        const token = Buffer.concat([selector, verifier]).toString('base64url')
        if (within) await within(tx as unknown as Database, token)
        return token
      }, WRITE_TOKENS)
    },

    /**
     * The token if it is of this purpose, unspent, unexpired, and was sent to the address the
     * user still has; otherwise null. The verifier is compared in constant time.
     */
    async find (purpose: TokenPurpose, token: string): Promise<LiveToken | null> {
      const parts = splitToken(token)
      // one_time_tokens_selector_unique, then users primary key.
      const [row] = parts
        ? await db.select({
          id: oneTimeTokens.id,
          userId: oneTimeTokens.user_id,
          email: oneTimeTokens.email,
          purpose: oneTimeTokens.purpose,
          verifierHash: oneTimeTokens.verifier_hash,
          live: sql<number>`${oneTimeTokens.spent_at} IS NULL AND ${oneTimeTokens.expires_at} > ${now}`.mapWith(Number),
          currentEmail: users.email,
        }).from(oneTimeTokens).innerJoin(users, eq(users.id, oneTimeTokens.user_id)).where(eq(oneTimeTokens.selector, parts.selector))
        : []
      const stored = row ? Buffer.from(row.verifierHash, 'hex') : DUMMY_HASH
      const matches = timingSafeEqual(sha256(parts?.verifier ?? DUMMY_HASH), stored)
      if (!row || !matches || row.purpose !== purpose || !row.live || row.email !== row.currentEmail) return null
      return { id: row.id, userId: row.userId, email: row.email }
    },

    /**
     * Sets the password, spends the token and ends every session, or does nothing (false: the
     * token was spent or expired meanwhile, or the email changed). One transaction: a reset
     * never half-happens. The link came through the mailbox, so it also verifies the email.
     */
    async resetPassword (token: LiveToken, passwordHash: string, context: EventContext): Promise<boolean> {
      return db.transaction(async (tx) => {
        if (!await spend(tx as unknown as Database, token.id)) return false
        // users primary key.
        const [result] = await tx.update(users)
          .set({ password_hash: passwordHash, email_verified_at: sql`COALESCE(${users.email_verified_at}, ${now})` })
          .where(and(eq(users.id, token.userId), eq(users.email, token.email)))
        if (result.affectedRows !== 1) tx.rollback()
        // Any other reset link still out there dies with this reset (user/purpose index prefix).
        await tx.update(oneTimeTokens).set({ spent_at: now })
          .where(and(eq(oneTimeTokens.user_id, token.userId), eq(oneTimeTokens.purpose, 'password_reset'), isNull(oneTimeTokens.spent_at)))
        await cutOffSessions(tx as unknown as Database, token.userId, null)
        await record(tx as unknown as Database, { type: 'password.reset', subject_user_id: token.userId, context })
        return true
      }, WRITE_TOKENS).catch(rolledBackAs(false))
    },

    /** Spends the token and marks its email verified; false as for resetPassword(). */
    async verifyEmail (token: LiveToken, context: EventContext): Promise<boolean> {
      return db.transaction(async (tx) => {
        if (!await spend(tx as unknown as Database, token.id)) return false
        // users primary key; the email must still be the one the mail went to.
        const [result] = await tx.update(users).set({ email_verified_at: sql`COALESCE(${users.email_verified_at}, ${now})` })
          .where(and(eq(users.id, token.userId), eq(users.email, token.email)))
        if (result.affectedRows !== 1) tx.rollback()
        await record(tx as unknown as Database, { type: 'email.verified', subject_user_id: token.userId, context })
        return true
      }).catch(rolledBackAs(false))
    },

    /**
     * A mail of `purpose` asked for (POST /password/forgot, /email/verify/send): the outbox row and,
     * for a known account, the event, in one transaction. `userId` null (an address no account
     * has) still writes the row, so both answers cost the same; it is skipped when claimed.
     */
    async requestMail (purpose: TokenPurpose, userId: number | null, context: EventContext): Promise<void> {
      await db.transaction(async (tx) => {
        await enqueueMail(tx as unknown as Database, purpose, userId)
        if (userId !== null && purpose === 'password_reset') {
          await record(tx as unknown as Database, { type: 'password.reset_requested', subject_user_id: userId, context })
        }
      })
    },

    /** Deletes tokens that expired over an hour ago: they no longer count towards the mail cap. */
    purgeExpired (batchSize?: number): Promise<number> {
      // one_time_tokens_expires_at_idx.
      return deleteInBatches((limit) => db.delete(oneTimeTokens)
        .where(lt(oneTimeTokens.expires_at, sql`CURRENT_TIMESTAMP(3) - INTERVAL ${HOUR_MS * 1000} MICROSECOND`)).limit(limit), batchSize)
    },
  }
}

export type OneTimeTokensRepository = ReturnType<typeof createOneTimeTokensRepository>
