import { createHash, randomBytes } from 'node:crypto'
import { and, count, eq, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import { mfaChallenges, recoveryCodes, totpCredentials, users } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import { rolledBackAs } from '../db/errors.js'
import type { User } from '../schemas/shared.js'
import { spendPasskeyUse } from './passkeys.js'
import { cutOffSessions, insertSession, type NewSession } from './sessions.js'
import type { Effects, EventContext } from './events.js'

// The second factor's storage (API.md §13): TOTP secrets, recovery codes and the challenges of
// logins that wait for a code. Every change that turns a factor on or off, or replaces the codes,
// is one transaction with the end of the user's other sessions and its event (API.md §12, §15).

/** API.md §13: an `mfa_token` lives 5 minutes and allows 5 wrong codes. */
export const MFA_CHALLENGE_TTL_MS = 5 * 60_000
export const MFA_MAX_ATTEMPTS = 5

/**
 * What proves the second factor: a TOTP code's time step (null: no step matched), a recovery
 * code's hash, or a passkey's checked answer (its id and new signature counter; null: the answer
 * did not check out).
 */
export type SecondFactorProof = { method: 'totp', step: number | null } | { method: 'recovery_code', codeHash: string }
  | { method: 'passkey', passkeyId: number | null, newCounter: number }

/** How the first step of a login that waits for its second factor was proved (RFC 8176). */
export type FirstFactor = 'pwd' | 'fed'

/** RFC 8176 `amr` of a login finished with its second factor: a code is `otp`, a passkey `hwk`. */
export const secondFactorAmr = (firstFactor: FirstFactor, method: SecondFactorProof['method']) => [firstFactor, method === 'passkey' ? 'hwk' : 'otp']

/**
 * A new challenge for a first step that checked out: its `mfa_token` (only the SHA-256 is stored),
 * bound to the session generation read with the first factor. In the caller's transaction, so a
 * provider's sign-in can link an identity and start the challenge in one.
 */
export async function insertChallenge (tx: Database, userId: number, generation: number, firstFactor: FirstFactor): Promise<string> {
  const token = randomBytes(TOKEN_BYTES).toString('base64url')
  await tx.insert(mfaChallenges).values({
    token_hash: sha256Hex(token),
    user_id: userId,
    session_generation: generation,
    first_factor: firstFactor,
    expires_at: sql`CURRENT_TIMESTAMP(3) + INTERVAL ${MFA_CHALLENGE_TTL_MS * 1000} MICROSECOND`,
  })
  return token
}

/** A live challenge, with what finishing it needs. */
export interface Challenge {
  tokenHash: string
  user: User
  generation: number
  /** The user's TOTP secret as stored (sealed: src/mfa/totp.ts). */
  sealedSecret: string
  /** How the first step was proved: the session's `amr` starts with it. */
  firstFactor: FirstFactor
}

export type ChallengeOutcome =
  | { result: 'signed_in' }
  | { result: 'wrong_code', attemptsLeft: number }
  /** Expired, spent (used, or out of attempts), or voided by a change to the account meanwhile. */
  | { result: 'invalid_token' }

// 256 random bits, base64url: unguessable, and safe in a JSON body, a log line (it is redacted anyway) and a URL.
const TOKEN_BYTES = 32
const TOKEN = /^[A-Za-z0-9_-]{43}$/
const now = sql`CURRENT_TIMESTAMP(3)`
const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex')

// READ COMMITTED for the transactions that delete and insert a user's recovery codes: under
// REPEATABLE READ the DELETE by user_id gap-locks recovery_codes_user_hash_unique, and two users
// replacing their codes at once could deadlock on each other's INSERT, as the same pattern did in
// one_time_tokens (see its WRITE_TOKENS). The row locks taken first (the TOTP row) are what
// orders the requests of one user.
const WRITE_CODES = { isolationLevel: 'read committed' } as const

/**
 * A challenge is live while unspent, unexpired, under its attempts, and bound to the user's
 * current session generation: a password change, a reset, a role change, a logout of every
 * session or a factor turned off since the password was checked voids it.
 */
const liveChallenge = (tokenHash: string) => and(
  eq(mfaChallenges.token_hash, tokenHash),
  isNull(mfaChallenges.spent_at),
  sql`${mfaChallenges.expires_at} > ${now}`,
  lt(mfaChallenges.attempts, MFA_MAX_ATTEMPTS),
  sql`${mfaChallenges.session_generation} = (SELECT ${users.session_generation} FROM ${users} WHERE ${users.id} = ${mfaChallenges.user_id})`,
)

/**
 * Deletes the user's recovery codes: at most 10 rows, on recovery_codes_user_hash_unique's user_id
 * prefix. Forced (the multi-table form is the DELETE that takes an index hint): on a table of
 * few users' codes MariaDB otherwise reads the whole table (test/db/plans.test.ts).
 */
async function deleteCodes (tx: Database, userId: number) {
  await tx.execute(sql`DELETE r FROM ${recoveryCodes} r FORCE INDEX (recovery_codes_user_hash_unique) WHERE r.user_id = ${userId}`)
}

export function createMfaRepository (db: Database, { record }: Pick<Effects, 'record'>) {
  async function insertCodes (tx: Database, userId: number, codeHashes: string[]) {
    await deleteCodes(tx, userId)
    await tx.insert(recoveryCodes).values(codeHashes.map((code_hash) => ({ user_id: userId, code_hash })))
  }

  return {
    /** The user's TOTP row: the sealed secret and whether it is on (null: never set up, or turned off). */
    async findTotp (userId: number): Promise<{ sealedSecret: string, enabled: boolean } | null> {
      // totp_credentials primary key.
      const [row] = await db.select({ sealedSecret: totpCredentials.secret, enabledAt: totpCredentials.enabled_at })
        .from(totpCredentials).where(eq(totpCredentials.user_id, userId))
      return row ? { sealedSecret: row.sealedSecret, enabled: row.enabledAt !== null } : null
    },

    /**
     * Stores a new secret, not active yet, replacing one set up before but never enabled. False
     * when TOTP is already on: an enabled secret is never replaced (turn it off first). One upsert
     * that leaves an enabled row as it is, then a read of the row it left, in one transaction: a
     * concurrent enable cannot slip between the check and the write.
     */
    async beginTotpSetup (userId: number, sealedSecret: string): Promise<boolean> {
      return db.transaction(async (tx) => {
        const pending = isNull(totpCredentials.enabled_at)
        await tx.insert(totpCredentials).values({ user_id: userId, secret: sealedSecret }).onDuplicateKeyUpdate({
          set: {
            secret: sql`IF(${pending}, ${sealedSecret}, ${totpCredentials.secret})`,
            last_used_step: sql`IF(${pending}, NULL, ${totpCredentials.last_used_step})`,
            created_at: sql`IF(${pending}, ${now}, ${totpCredentials.created_at})`,
          },
        })
        const [row] = await tx.select({ secret: totpCredentials.secret }).from(totpCredentials).where(eq(totpCredentials.user_id, userId))
        return row?.secret === sealedSecret
      })
    },

    /**
     * Turns TOTP on with the secret whose code the caller checked (`sealedSecret`; false if a new
     * setup replaced it meanwhile, or it is already on), with `step` as the last code used, and
     * the user's recovery codes; ends every other session; writes `mfa.enabled`. One transaction.
     */
    async enableTotp (userId: number, { sealedSecret, step }: { sealedSecret: string, step: number }, codeHashes: string[],
      keptSessionId: string, context: EventContext): Promise<boolean> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        // totp_credentials primary key; the secret must still be the one the code was checked against.
        const [result] = await tx.update(totpCredentials).set({ enabled_at: now, last_used_step: step })
          .where(and(eq(totpCredentials.user_id, userId), isNull(totpCredentials.enabled_at), eq(totpCredentials.secret, sealedSecret)))
        if (result.affectedRows !== 1) return false
        await insertCodes(tx, userId, codeHashes)
        await cutOffSessions(tx, userId, keptSessionId)
        await record(tx, { type: 'mfa.enabled', subject_user_id: userId, context, details: { method: 'totp', sessions_ended: 'others' } })
        return true
      }, WRITE_CODES)
    },

    /** Turns TOTP off (false: it was not on), voids the recovery codes, ends every other session, writes `mfa.disabled`. */
    async disableTotp (userId: number, keptSessionId: string, context: EventContext): Promise<boolean> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        const [result] = await tx.delete(totpCredentials).where(and(eq(totpCredentials.user_id, userId), isNotNull(totpCredentials.enabled_at)))
        if (result.affectedRows !== 1) return false
        await deleteCodes(tx, userId)
        // The generation goes up: a login waiting for its code (an mfa_token) dies with the factor.
        await cutOffSessions(tx, userId, keptSessionId)
        await record(tx, { type: 'mfa.disabled', subject_user_id: userId, context, details: { method: 'totp', sessions_ended: 'others' } })
        return true
      }, WRITE_CODES)
    },

    /** New recovery codes for the old ones (false: TOTP is not on); ends every other session; writes `mfa.recovery_codes_regenerated`. */
    async replaceRecoveryCodes (userId: number, codeHashes: string[], keptSessionId: string, context: EventContext): Promise<boolean> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        // Locks the TOTP row (primary key), so a disable cannot commit between this check and the insert.
        const [totp] = await tx.select({ enabledAt: totpCredentials.enabled_at }).from(totpCredentials)
          .where(eq(totpCredentials.user_id, userId)).for('update')
        if (!totp?.enabledAt) return false
        await insertCodes(tx, userId, codeHashes)
        await cutOffSessions(tx, userId, keptSessionId)
        await record(tx, { type: 'mfa.recovery_codes_regenerated', subject_user_id: userId, context, details: { count: codeHashes.length, sessions_ended: 'others' } })
        return true
      }, WRITE_CODES)
    },

    /**
     * A login whose password checked out and that needs its second factor: a new challenge bound
     * to the session generation read with the password hash. Returns the `mfa_token`; only its
     * SHA-256 is stored.
     */
    async startChallenge (userId: number, generation: number): Promise<string> {
      return insertChallenge(db, userId, generation, 'pwd')
    },

    /**
     * The live challenge of this `mfa_token`, with the user and their TOTP secret; null when
     * unknown, expired, spent or voided, or when TOTP is no longer on. Three primary-key reads in
     * one statement: the challenge by its hash, then its user and its TOTP row.
     */
    async findChallenge (token: string): Promise<Challenge | null> {
      if (!TOKEN.test(token)) return null
      const tokenHash = sha256Hex(token)
      const [row] = await db.select({
        generation: mfaChallenges.session_generation,
        sealedSecret: totpCredentials.secret,
        firstFactor: sql<FirstFactor>`${mfaChallenges.first_factor}`,
        user: {
          id: users.id, email: users.email, name: users.name, role: users.role,
          email_verified_at: users.email_verified_at, created_at: users.created_at, updated_at: users.updated_at,
        },
      }).from(mfaChallenges)
        .innerJoin(users, eq(users.id, mfaChallenges.user_id))
        .innerJoin(totpCredentials, and(eq(totpCredentials.user_id, mfaChallenges.user_id), isNotNull(totpCredentials.enabled_at)))
        .where(liveChallenge(tokenHash))
      return row ? { tokenHash, ...row } : null
    },

    /**
     * Finishes a login with its second factor, in one transaction, whatever the proof:
     * 1. the proof is spent by a conditional UPDATE: a TOTP code's step must be later than the
     *    last one used (so a code works once, on every instance), a recovery code must be unused,
     *    a passkey's signature counter must move forward.
     *    A wrong code runs the same statement (step null matches nothing), so the database work of
     *    a wrong code and a right one has one shape;
     * 2. a wrong code is counted on the challenge, and the one that reaches MFA_MAX_ATTEMPTS spends
     *    it; `mfa.failed` is written;
     * 3. a right one spends the challenge (the single-use gate: of concurrent uses one gets past
     *    it), starts the session with the generation the password was checked under and
     *    `amr: [first factor, 'otp' or 'hwk']`; a recovery code also ends every other session (API.md §13) and
     *    writes `mfa.recovery_code_used`.
     */
    async finishChallenge (challenge: Challenge, proof: SecondFactorProof, session: Omit<NewSession, 'generation' | 'amr'>,
      context: EventContext): Promise<ChallengeOutcome> {
      const userId = challenge.user.id
      return db.transaction(async (raw): Promise<ChallengeOutcome> => {
        const tx = raw as unknown as Database
        const [proved] = proof.method === 'totp'
          // totp_credentials primary key. Steps start at 0 in 1970: 0 is never a real code's step.
          ? await tx.update(totpCredentials).set({ last_used_step: proof.step ?? 0 }).where(and(
            eq(totpCredentials.user_id, userId),
            isNotNull(totpCredentials.enabled_at),
            sql`COALESCE(${totpCredentials.last_used_step}, 0) < ${proof.step ?? 0}`,
          ))
          : proof.method === 'passkey'
            // passkeys primary key; ids start at 1, so 0 (an answer that did not check out) matches nothing.
            ? await spendPasskeyUse(tx, proof.passkeyId ?? 0, userId, proof.newCounter)
            // recovery_codes_user_hash_unique.
            : await tx.update(recoveryCodes).set({ used_at: now })
              .where(and(eq(recoveryCodes.user_id, userId), eq(recoveryCodes.code_hash, proof.codeHash), isNull(recoveryCodes.used_at)))
        if (proved.affectedRows !== 1) {
          // One upsert-style update: LAST_INSERT_ID(expr) hands back this statement's own count;
          // MariaDB assigns left to right, so spent_at sees the new count.
          const [counted] = await tx.update(mfaChallenges).set({
            attempts: sql`LAST_INSERT_ID(${mfaChallenges.attempts} + 1)`,
            spent_at: sql`IF(${mfaChallenges.attempts} >= ${MFA_MAX_ATTEMPTS}, ${now}, NULL)`,
          }).where(liveChallenge(challenge.tokenHash))
          if (counted.affectedRows !== 1) return { result: 'invalid_token' }
          const attemptsLeft = MFA_MAX_ATTEMPTS - counted.insertId
          await record(tx, { type: 'mfa.failed', subject_user_id: userId, context, details: { method: proof.method, attempts_left: attemptsLeft } })
          return { result: 'wrong_code', attemptsLeft }
        }
        // mfa_challenges primary key.
        const [spent] = await tx.update(mfaChallenges).set({ spent_at: now }).where(liveChallenge(challenge.tokenHash))
        // The code stays unused: nothing of this transaction is kept.
        if (spent.affectedRows !== 1) raw.rollback()
        await insertSession(tx, record, { ...session, generation: challenge.generation, amr: secondFactorAmr(challenge.firstFactor, proof.method) }, context)
        if (proof.method === 'recovery_code') {
          // The new session is kept; every other one ends (its generation moves with the user's).
          await cutOffSessions(tx, userId, session.id)
          // The user's ≤ 10 codes, forced onto their index as deleteCodes() is.
          const [left] = await tx.select({ n: count() }).from(recoveryCodes, { forceIndex: 'recovery_codes_user_hash_unique' })
            .where(and(eq(recoveryCodes.user_id, userId), isNull(recoveryCodes.used_at)))
          await record(tx, { type: 'mfa.recovery_code_used', subject_user_id: userId, context: { ...context, session_id: session.id },
            details: { recovery_codes_left: left!.n, sessions_ended: 'others' } })
        }
        return { result: 'signed_in' }
      }).catch(rolledBackAs<ChallengeOutcome>({ result: 'invalid_token' }))
    },

    /** Deletes expired challenges (mfa_challenges_expires_at_idx), in batches like the other purges. */
    purgeExpired (batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(mfaChallenges).where(lt(mfaChallenges.expires_at, now)).limit(limit), batchSize)
    },
  }
}

export type MfaRepository = ReturnType<typeof createMfaRepository>
