import { and, count, eq, gt, lt, sql } from 'drizzle-orm'
import { federatedIdentities, passkeys, users, webauthnChallenges } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import { isDuplicateKey, rolledBackAs } from '../db/errors.js'
import type { NewCredential, StoredCredential } from '../passkeys/webauthn.js'
import { PASSKEY_CHALLENGE_TTL_MS } from '../passkeys/webauthn.js'
import type { Passkey, User } from '../schemas/shared.js'
import type { Effects, EventContext } from './events.js'
import { cutOffSessions, insertSession, type NewSession } from './sessions.js'
import { userColumns } from './users.js'

// Passkeys' storage (API.md §14): the credentials and the challenges of their ceremonies. Adding
// and removing a passkey each end the user's other sessions and write their event in the same
// transaction (API.md §12, §15); a sign-in moves the signature counter forward in the transaction
// that starts its session.

/** A user may hold this many passkeys: enough for every device and a spare key or two. */
export const MAX_PASSKEYS_PER_USER = 25

/** What a challenge is for; 'decoy': the options for an email without passkeys, which no answer can use. */
export type CeremonyPurpose = 'register' | 'login' | 'mfa' | 'decoy'

/** A credential found by its id for a sign-in, with its user. */
export interface CredentialOwner extends StoredCredential {
  id: number
  userHandle: string
  user: User
  /** users.session_generation, read with the credential: the session is born with it. */
  generation: number
}

const now = sql`CURRENT_TIMESTAMP(3)`
const splitTransports = (text: string) => text ? text.split(',') : []

const passkeyColumns = {
  id: passkeys.id,
  name: passkeys.name,
  created_at: passkeys.created_at,
  last_used_at: passkeys.last_used_at,
  backed_up: passkeys.backed_up,
  transports: passkeys.transports,
}
const toPasskey = (row: { transports: string } & Omit<Passkey, 'transports'>): Passkey => ({ ...row, transports: splitTransports(row.transports) })

/**
 * The statement that spends a passkey's use: the counter moves to `newCounter` only forward
 * (WebAuthn §6.1.1: a count that did not grow means a cloned authenticator), or stays at 0 for an
 * authenticator that keeps none. Conditional, so of two uses of one signature on two instances
 * only one moves it. Also the proof of a second factor (repositories/mfa.ts).
 */
export function spendPasskeyUse (tx: Database, passkeyId: number, userId: number, newCounter: number) {
  return tx.update(passkeys).set({ counter: newCounter, last_used_at: now }).where(and(
    eq(passkeys.id, passkeyId),
    eq(passkeys.user_id, userId),
    sql`(${passkeys.counter} < ${newCounter} OR (${passkeys.counter} = 0 AND ${newCounter} = 0))`,
  ))
}

export function createPasskeysRepository (db: Database, { record }: Pick<Effects, 'record'>) {
  /** The user's passkeys, oldest first (passkeys_user_id_id_idx): at most MAX_PASSKEYS_PER_USER rows. */
  const ofUser = (tx: Database, userId: number) => tx.select({ ...passkeyColumns, credentialId: passkeys.credential_id, publicKey: passkeys.public_key, counter: passkeys.counter })
    .from(passkeys, { forceIndex: 'passkeys_user_id_id_idx' }).where(eq(passkeys.user_id, userId)).orderBy(passkeys.id)

  return {
    /** The user's passkeys as GET /passkeys shows them, newest first. */
    async list (userId: number): Promise<Passkey[]> {
      const rows = await ofUser(db, userId)
      return rows.reverse().map(({ credentialId: _, publicKey: __, counter: ___, ...row }) => toPasskey(row))
    },

    /** The user's credentials, for excludeCredentials and allowCredentials. */
    async credentialsOf (userId: number): Promise<StoredCredential[]> {
      const rows = await ofUser(db, userId)
      return rows.map((row) => ({ credentialId: row.credentialId, publicKey: row.publicKey, counter: row.counter, transports: splitTransports(row.transports) }))
    },

    /** Stores the challenge of a ceremony for PASSKEY_CHALLENGE_TTL_MS. */
    async saveChallenge (challengeHash: string, purpose: CeremonyPurpose, userId: number | null, mfaTokenHash: string | null = null): Promise<void> {
      await db.insert(webauthnChallenges).values({
        challenge_hash: challengeHash,
        purpose,
        user_id: userId,
        mfa_token_hash: mfaTokenHash,
        expires_at: sql`CURRENT_TIMESTAMP(3) + INTERVAL ${PASSKEY_CHALLENGE_TTL_MS * 1000} MICROSECOND`,
      })
    },

    /**
     * Spends a challenge of this ceremony: null when unknown, of another ceremony, expired or
     * already spent. The row is read, then deleted by a conditional DELETE: of two answers to one
     * challenge (on one instance or two) only one deletes it, and only that one goes on. Spent
     * before the answer is checked, so a wrong answer spends it too: one try per challenge.
     */
    async takeChallenge (challengeHash: string, purpose: CeremonyPurpose): Promise<{ userId: number | null, mfaTokenHash: string | null } | null> {
      const live = and(eq(webauthnChallenges.challenge_hash, challengeHash), eq(webauthnChallenges.purpose, purpose), gt(webauthnChallenges.expires_at, now))
      // webauthn_challenges primary key, twice.
      const [row] = await db.select({ userId: webauthnChallenges.user_id, mfaTokenHash: webauthnChallenges.mfa_token_hash }).from(webauthnChallenges).where(live)
      if (!row) return null
      const [deleted] = await db.delete(webauthnChallenges).where(live)
      return deleted.affectedRows === 1 ? row : null
    },

    /** The credential with this id and its user (passkeys_credential_id_unique, users primary key); null when unknown. */
    async findByCredentialId (credentialId: string): Promise<CredentialOwner | null> {
      if (credentialId.length === 0 || credentialId.length > 255) return null
      const [row] = await db.select({
        id: passkeys.id,
        credentialId: passkeys.credential_id,
        publicKey: passkeys.public_key,
        counter: passkeys.counter,
        transports: passkeys.transports,
        userHandle: passkeys.user_handle,
        user: userColumns,
        generation: users.session_generation,
      }).from(passkeys).innerJoin(users, eq(users.id, passkeys.user_id)).where(eq(passkeys.credential_id, credentialId))
      return row ? { ...row, transports: splitTransports(row.transports) } : null
    },

    /**
     * Stores a verified passkey for the user, ends every other session, writes `passkey.added`; one
     * transaction. 'exists' when the credential is registered already (to anyone), 'limit' at
     * MAX_PASSKEYS_PER_USER. The user's row is locked first, so two registrations at once cannot
     * both pass the limit.
     */
    async add (userId: number, credential: NewCredential & { userHandle: string, name: string }, keptSessionId: string,
      context: EventContext): Promise<Passkey | 'exists' | 'limit'> {
      try {
        return await db.transaction(async (raw) => {
          const tx = raw as unknown as Database
          // users primary key.
          await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update')
          const [held] = await tx.select({ n: count() }).from(passkeys, { forceIndex: 'passkeys_user_id_id_idx' }).where(eq(passkeys.user_id, userId))
          if (held!.n >= MAX_PASSKEYS_PER_USER) return 'limit' as const
          const [result] = await tx.insert(passkeys).values({
            user_id: userId,
            credential_id: credential.credentialId,
            public_key: credential.publicKey,
            counter: credential.counter,
            transports: credential.transports.join(','),
            backup_eligible: credential.backupEligible,
            backed_up: credential.backedUp,
            aaguid: credential.aaguid,
            user_handle: credential.userHandle,
            name: credential.name,
          })
          await cutOffSessions(tx, userId, keptSessionId)
          await record(tx, { type: 'passkey.added', subject_user_id: userId, context,
            details: { passkey: result.insertId, name: credential.name, backed_up: credential.backedUp, sessions_ended: 'others' } })
          const [row] = await tx.select(passkeyColumns).from(passkeys).where(eq(passkeys.id, result.insertId))
          return toPasskey(row!)
        })
      } catch (error) {
        if (isDuplicateKey(error)) return 'exists'
        throw error
      }
    },

    /** Renames one of the user's passkeys; null when it is not theirs (or gone). */
    async rename (userId: number, id: number, name: string): Promise<Passkey | null> {
      const [result] = await db.update(passkeys).set({ name }).where(and(eq(passkeys.id, id), eq(passkeys.user_id, userId)))
      if (result.affectedRows !== 1) {
        // affectedRows counts changed rows: the same name again is 0 too.
        const [row] = await db.select(passkeyColumns).from(passkeys).where(and(eq(passkeys.id, id), eq(passkeys.user_id, userId)))
        return row ? toPasskey(row) : null
      }
      const [row] = await db.select(passkeyColumns).from(passkeys).where(eq(passkeys.id, id))
      return row ? toPasskey(row) : null
    },

    /**
     * Removes one of the user's passkeys, unless it is their last way to sign in (no password, no
     * provider identity, no other passkey); ends every other session; writes `passkey.removed`.
     * The user's row is locked first, so two removals at once cannot both see "one is left".
     */
    async remove (userId: number, id: number, keptSessionId: string, context: EventContext): Promise<'removed' | 'not_found' | 'last'> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        // users primary key.
        const [user] = await tx.select({ hasPassword: sql<number>`${users.password_hash} IS NOT NULL`.mapWith(Number) }).from(users)
          .where(eq(users.id, userId)).for('update')
        if (!user) return 'not_found'
        const [passkey] = await tx.select({ name: passkeys.name }).from(passkeys).where(and(eq(passkeys.id, id), eq(passkeys.user_id, userId)))
        if (!passkey) return 'not_found'
        if (!user.hasPassword && await otherWaysToSignIn(tx, userId) <= 1) return 'last'
        await tx.delete(passkeys).where(eq(passkeys.id, id))
        await cutOffSessions(tx, userId, keptSessionId)
        await record(tx, { type: 'passkey.removed', subject_user_id: userId, context, details: { passkey: id, name: passkey.name, sessions_ended: 'others' } })
        return 'removed'
      })
    },

    /**
     * A sign-in with a passkey whose answer checked out: moves the counter forward (the single-use
     * gate of this signature) and starts the session, in one transaction. False when the counter
     * did not move (a replayed or cloned answer) or the user's sessions were cut off since the
     * credential was read: nothing is kept.
     */
    async signIn (owner: CredentialOwner, newCounter: number, session: Omit<NewSession, 'generation'>, context: EventContext): Promise<boolean> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        const [spent] = await spendPasskeyUse(tx, owner.id, owner.user.id, newCounter)
        if (spent.affectedRows !== 1) raw.rollback()
        await insertSession(tx, record, { ...session, generation: owner.generation }, context, { passkey: owner.id })
        return true
      }).catch(rolledBackAs(false))
    },

    /** Deletes expired challenges (webauthn_challenges_expires_at_idx), in batches like the other purges. */
    purgeExpired (batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(webauthnChallenges).where(lt(webauthnChallenges.expires_at, now)).limit(limit), batchSize)
    },
  }
}

/**
 * How many ways the user has to sign in besides a password: passkeys and provider identities
 * (or only one kind). Each counted on its user index (passkeys_user_id_id_idx,
 * federated_identities_user_id_idx).
 */
export async function otherWaysToSignIn (tx: Database, userId: number, only?: 'passkeys'): Promise<number> {
  const [keys] = await tx.select({ n: count() }).from(passkeys, { forceIndex: 'passkeys_user_id_id_idx' }).where(eq(passkeys.user_id, userId))
  if (only === 'passkeys') return keys!.n
  const [identities] = await tx.select({ n: count() }).from(federatedIdentities).where(eq(federatedIdentities.user_id, userId))
  return keys!.n + identities!.n
}

export type PasskeysRepository = ReturnType<typeof createPasskeysRepository>
