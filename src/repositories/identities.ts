import { createHash, randomBytes } from 'node:crypto'
import { and, asc, eq, gt, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import { federatedIdentities, oidcExchangeCodes, oidcLogins, totpCredentials, users } from '../../drizzle/schema.js'
import { AppError } from '../errors.js'
import { isDuplicateKey } from '../db/errors.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import type { User } from '../schemas/shared.js'
import { insertSession, type NewSession } from './sessions.js'
import { insertChallenge } from './mfa.js'
import { otherWaysToSignIn } from './passkeys.js'
import { userColumns } from './users.js'
import type { Effects, EventContext } from './events.js'

// Sign in with a provider (API.md §17): the sign-ins under way, the one-time exchange codes, and
// the identities linked to accounts. Every change that adds or removes a way to sign in is one
// transaction with its event (API.md §15).

/** A sign-in under way lives this long: the time to log in at the provider and consent. */
export const OIDC_LOGIN_TTL_MS = 10 * 60_000
/** The exchange code of redirect_uri#code=… lives this long: the SPA posts it at once. */
export const EXCHANGE_CODE_TTL_MS = 2 * 60_000

const now = sql`CURRENT_TIMESTAMP(3)`
const inFuture = (ms: number) => sql`CURRENT_TIMESTAMP(3) + INTERVAL ${ms * 1000} MICROSECOND`
export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex')
// 256 random bits, base64url.
const CODE = /^[A-Za-z0-9_-]{43}$/

export interface NewOidcLogin {
  state: string
  provider: string
  redirectUri: string
  callbackUri: string
  nonce: string
  codeVerifier: string
  linkUserId: number | null
}

export interface OidcLogin {
  provider: string
  redirectUri: string
  callbackUri: string
  nonce: string
  codeVerifier: string
  linkUserId: number | null
}

/** What a verified ID token said about the person. */
export interface ProviderIdentity {
  provider: string
  issuer: string
  subject: string
  email: string | null
  emailVerified: boolean
  name: string | null
}

/** An identity as GET /me/identities shows it. */
export interface IdentityRow {
  id: number
  provider: string
  issuer: string
  subject: string
  email: string | null
  created_at: Date
  last_used_at: Date | null
}

export type SignInCheck = 'ok' | 'account_exists' | 'email_required'

export type ExchangeOutcome =
  | { result: 'signed_in', user: User, created: boolean }
  /** The account has a second factor: no session yet, a challenge for POST /login/mfa (API.md §13). */
  | { result: 'mfa_required', mfaToken: string, hasPasskey: boolean }
  /** Unknown, spent or expired code; or the identity vanished since the callback. */
  | { result: 'invalid_code' }
  | { result: 'account_exists' }

const identityColumns = {
  id: federatedIdentities.id,
  provider: federatedIdentities.provider,
  issuer: federatedIdentities.issuer,
  subject: federatedIdentities.subject,
  email: federatedIdentities.email,
  created_at: federatedIdentities.created_at,
  last_used_at: federatedIdentities.last_used_at,
}

const ofSubject = (issuer: string, subject: string) => and(eq(federatedIdentities.issuer, issuer), eq(federatedIdentities.subject, subject))

export function createIdentitiesRepository (db: Database, { record, enqueueMail }: Effects) {
  return {
    /** A sign-in under way, keyed by the SHA-256 of its state. */
    async startLogin (login: NewOidcLogin): Promise<void> {
      await db.insert(oidcLogins).values({
        state_hash: sha256Hex(login.state),
        provider: login.provider,
        redirect_uri: login.redirectUri,
        callback_uri: login.callbackUri,
        nonce: login.nonce,
        code_verifier: login.codeVerifier,
        link_user_id: login.linkUserId,
        expires_at: inFuture(OIDC_LOGIN_TTL_MS),
      })
    },

    /**
     * Spends the sign-in of this state and returns it; null when unknown, spent or expired. The
     * conditional UPDATE on the primary key is the single-use gate: of two callbacks with one
     * state (a replay), one gets past it.
     */
    async spendLogin (state: string): Promise<OidcLogin | null> {
      const stateHash = sha256Hex(state)
      const [spent] = await db.update(oidcLogins).set({ spent_at: now })
        .where(and(eq(oidcLogins.state_hash, stateHash), isNull(oidcLogins.spent_at), gt(oidcLogins.expires_at, now)))
      if (spent.affectedRows !== 1) return null
      const [row] = await db.select({
        provider: oidcLogins.provider,
        redirectUri: oidcLogins.redirect_uri,
        callbackUri: oidcLogins.callback_uri,
        nonce: oidcLogins.nonce,
        codeVerifier: oidcLogins.code_verifier,
        linkUserId: oidcLogins.link_user_id,
      }).from(oidcLogins).where(eq(oidcLogins.state_hash, stateHash))
      return row ?? null
    },

    /**
     * Whether a sign-in with this identity can end in a session, read before an exchange code is
     * handed out (the exchange checks again, in its transaction): a linked identity can; an
     * unlinked one whose email is an account's can only if the provider verified the email;
     * an unlinked one without an email cannot make an account.
     */
    async checkSignIn (identity: ProviderIdentity): Promise<SignInCheck> {
      // federated_identities_issuer_subject_unique.
      const [linked] = await db.select({ id: federatedIdentities.id }).from(federatedIdentities).where(ofSubject(identity.issuer, identity.subject))
      if (linked) return 'ok'
      if (identity.email === null) return 'email_required'
      // users_email_unique.
      const [existing] = await db.select({ id: users.id }).from(users).where(eq(users.email, identity.email))
      return existing && !identity.emailVerified ? 'account_exists' : 'ok'
    },

    /** A one-time code for POST /auth/oidc/exchange carrying the verified identity; only its SHA-256 is stored. */
    async issueExchangeCode (identity: ProviderIdentity): Promise<string> {
      const code = randomBytes(32).toString('base64url')
      await db.insert(oidcExchangeCodes).values({
        code_hash: sha256Hex(code),
        provider: identity.provider,
        issuer: identity.issuer,
        subject: identity.subject,
        email: identity.email,
        email_verified: identity.emailVerified,
        name: identity.name,
        expires_at: inFuture(EXCHANGE_CODE_TTL_MS),
      })
      return code
    },

    /**
     * POST /auth/oidc/exchange, in one transaction: spends the code, finds or makes the account,
     * starts the session (amr ["fed"]), and writes the events. The account is
     * - the one the identity (issuer, sub) is linked to; else
     * - the one with the identity's email, linked now, only if the provider verified that email
     *   (otherwise anyone who can make an account at some provider with a victim's address would
     *   get into the victim's account): `account_exists`, and the code stays spent; else
     * - a new account without a password, its email verified if the provider verified it.
     * A concurrent first sign-in of the same person (or a registration with the address) trips
     * a unique index: everything rolls back, the code included, and the answer is 409.
     */
    async exchange (code: string, session: Omit<NewSession, 'user_id' | 'generation' | 'amr'>, context: EventContext): Promise<ExchangeOutcome> {
      if (!CODE.test(code)) return { result: 'invalid_code' }
      const codeHash = sha256Hex(code)
      try {
        return await db.transaction(async (raw): Promise<ExchangeOutcome> => {
          const tx = raw as unknown as Database
          // oidc_exchange_codes primary key: the single-use gate.
          const [spent] = await tx.update(oidcExchangeCodes).set({ spent_at: now })
            .where(and(eq(oidcExchangeCodes.code_hash, codeHash), isNull(oidcExchangeCodes.spent_at), gt(oidcExchangeCodes.expires_at, now)))
          if (spent.affectedRows !== 1) return { result: 'invalid_code' }
          const [claims] = await tx.select({
            provider: oidcExchangeCodes.provider,
            issuer: oidcExchangeCodes.issuer,
            subject: oidcExchangeCodes.subject,
            email: oidcExchangeCodes.email,
            emailVerified: oidcExchangeCodes.email_verified,
            name: oidcExchangeCodes.name,
          }).from(oidcExchangeCodes).where(eq(oidcExchangeCodes.code_hash, codeHash))
          const identity = claims!
          const via = { provider: identity.provider }
          let userId: number
          let created = false
          // federated_identities_issuer_subject_unique, locked: an unlink cannot slip in between.
          const [linked] = await tx.select({ id: federatedIdentities.id, userId: federatedIdentities.user_id }).from(federatedIdentities)
            .where(ofSubject(identity.issuer, identity.subject)).for('update')
          if (linked) {
            userId = linked.userId
            await tx.update(federatedIdentities).set({ last_used_at: now, email: identity.email }).where(eq(federatedIdentities.id, linked.id))
          } else {
            if (identity.email === null) return { result: 'invalid_code' }
            // users_email_unique.
            const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, identity.email)).for('update')
            if (existing && !identity.emailVerified) {
              await record(tx, { type: 'oidc.failed', subject_user_id: existing.id, context, details: { ...via, reason: 'account_exists' } })
              return { result: 'account_exists' }
            }
            if (existing) {
              userId = existing.id
            } else {
              const [inserted] = await tx.insert(users).values({
                email: identity.email,
                name: identity.name ?? identity.email.split('@')[0]!.slice(0, 80),
                password_hash: null,
                ...(identity.emailVerified && { email_verified_at: sql`CURRENT_TIMESTAMP(3)` as unknown as Date }),
              })
              userId = inserted.insertId
              created = true
              await record(tx, { type: 'user.registered', subject_user_id: userId, context, details: { role: 'user', method: 'oidc', ...via } })
              // An address the provider did not vouch for is verified as any other: by a mailed link.
              if (!identity.emailVerified) await enqueueMail(tx, 'email_verification', userId)
            }
            await tx.insert(federatedIdentities).values({
              user_id: userId, provider: identity.provider, issuer: identity.issuer, subject: identity.subject, email: identity.email, last_used_at: now as unknown as Date,
            })
            await record(tx, { type: 'identity.linked', subject_user_id: userId, context, details: { ...via, via: created ? 'sign_up' : 'verified_email' } })
          }
          // users primary key: the generation the session is stamped with, and the user as answered.
          const [user] = await tx.select({ ...userColumns, generation: users.session_generation }).from(users).where(eq(users.id, userId))
          const { generation, ...profile } = user!
          // A provider proves one factor, as a password does: an account with a second factor
          // still owes its code (totp_credentials primary key), and the session starts then.
          const [totp] = await tx.select({ on: totpCredentials.user_id }).from(totpCredentials)
            .where(and(eq(totpCredentials.user_id, userId), isNotNull(totpCredentials.enabled_at)))
          if (totp) return { result: 'mfa_required', mfaToken: await insertChallenge(tx, userId, generation, 'fed'), hasPasskey: await otherWaysToSignIn(tx, userId, 'passkeys') > 0 }
          await insertSession(tx, record, { ...session, user_id: userId, generation, amr: ['fed'] }, context, { method: 'oidc', ...via })
          return { result: 'signed_in', user: profile, created }
        })
      } catch (error) {
        if (isDuplicateKey(error)) return { result: 'account_exists' }
        throw error
      }
    },

    /**
     * Links the identity to a signed-in user (POST /me/identities/:provider/link). 'taken' when it
     * is another account's; linking it to its own account again only refreshes it.
     */
    async link (userId: number, identity: ProviderIdentity, context: EventContext): Promise<'linked' | 'taken'> {
      try {
        return await db.transaction(async (raw) => {
          const tx = raw as unknown as Database
          const [existing] = await tx.select({ id: federatedIdentities.id, userId: federatedIdentities.user_id }).from(federatedIdentities)
            .where(ofSubject(identity.issuer, identity.subject)).for('update')
          if (existing && existing.userId !== userId) return 'taken'
          if (existing) {
            await tx.update(federatedIdentities).set({ email: identity.email }).where(eq(federatedIdentities.id, existing.id))
            return 'linked'
          }
          await tx.insert(federatedIdentities).values({
            user_id: userId, provider: identity.provider, issuer: identity.issuer, subject: identity.subject, email: identity.email,
          })
          await record(tx, { type: 'identity.linked', subject_user_id: userId, context, details: { provider: identity.provider, via: 'link' } })
          return 'linked'
        })
      } catch (error) {
        // Linked to someone else by a concurrent sign-in.
        if (isDuplicateKey(error)) return 'taken'
        throw error
      }
    },

    /** The user's identities, oldest first (federated_identities_user_id_idx; a handful per user). */
    async list (userId: number): Promise<IdentityRow[]> {
      return db.select(identityColumns).from(federatedIdentities)
        .where(eq(federatedIdentities.user_id, userId)).orderBy(asc(federatedIdentities.id))
    },

    /**
     * Removes one of the user's identities, unless it is their last way to sign in (no password,
     * no other identity, no passkey). The user's row is locked first, so two concurrent unlinks of a
     * user's two identities cannot both see "one other is left".
     */
    async unlink (userId: number, id: number, context: EventContext): Promise<'unlinked' | 'not_found' | 'last'> {
      return db.transaction(async (raw) => {
        const tx = raw as unknown as Database
        // users primary key.
        const [user] = await tx.select({ hasPassword: sql<number>`${users.password_hash} IS NOT NULL`.mapWith(Number) }).from(users)
          .where(eq(users.id, userId)).for('update')
        if (!user) return 'not_found'
        const [identity] = await tx.select({ provider: federatedIdentities.provider }).from(federatedIdentities)
          .where(and(eq(federatedIdentities.id, id), eq(federatedIdentities.user_id, userId)))
        if (!identity) return 'not_found'
        // This identity is counted among the ways: it must not be the only one.
        if (!user.hasPassword && await otherWaysToSignIn(tx, userId) <= 1) return 'last'
        await tx.delete(federatedIdentities).where(eq(federatedIdentities.id, id))
        await record(tx, { type: 'identity.unlinked', subject_user_id: userId, context, details: { provider: identity.provider } })
        return 'unlinked'
      })
    },

    /** Sign-ins and exchange codes expired over an hour ago (their expires_at indexes), in batches. */
    async purgeExpired (batchSize?: number): Promise<number> {
      const before = sql`CURRENT_TIMESTAMP(3) - INTERVAL 1 HOUR`
      return await deleteInBatches((limit) => db.delete(oidcLogins).where(lt(oidcLogins.expires_at, before)).limit(limit), batchSize) +
        await deleteInBatches((limit) => db.delete(oidcExchangeCodes).where(lt(oidcExchangeCodes.expires_at, before)).limit(limit), batchSize)
    },
  }
}

export type IdentitiesRepository = ReturnType<typeof createIdentitiesRepository>

/** A failure the route turns into 409 account_exists. */
export const accountExists = () => new AppError(409, 'account_exists',
  'An account with this email exists, and the provider has not verified that the email is yours: log in to that account and link the provider from there')
