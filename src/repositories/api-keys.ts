import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { and, desc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm'
import { apiKeys, passkeys, recoveryCodes, totpCredentials, users } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import type { MfaStatus, User } from '../schemas/shared.js'
import type { Effects, EventContext } from './events.js'
import { userColumns } from './users.js'

/** API.md §16. `admin` adds an admin's rights; without it an admin's key is a user's key. */
export const API_KEY_SCOPES = ['boards:read', 'boards:write', 'users:read', 'profile', 'admin'] as const
export type ApiKeyScope = typeof API_KEY_SCOPES[number]

/**
 * `bk_<prefix>_<secret>`: 12 lower-case base32 characters (60 bits) to find the row, 43 base64url
 * characters (256 bits) of secret. Secret scanners can match it by this expression.
 */
export const API_KEY_PATTERN = /^bk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const sha256 = (text: string) => createHash('sha256').update(text).digest()
// Compared against when no key has the prefix, so an unknown prefix and a wrong secret cost the same.
const DUMMY_HASH = Buffer.alloc(32)
const MINUTE_MS = 60_000

export interface ApiKey {
  id: number
  name: string
  scopes: ApiKeyScope[]
  prefix: string
  created_at: Date
  expires_at: Date | null
  last_used_at: Date | null
}

/** A key that checked out, with its user as they are now. */
export interface LiveApiKey {
  id: number
  scopes: ApiKeyScope[]
  user: User
  /** The user's second factors (GET /me), read in the same statement. */
  mfa: MfaStatus
}

const keyColumns = {
  id: apiKeys.id,
  name: apiKeys.name,
  scopes: apiKeys.scopes,
  prefix: apiKeys.prefix,
  created_at: apiKeys.created_at,
  expires_at: apiKeys.expires_at,
  last_used_at: apiKeys.last_used_at,
}

const parseScopes = (scopes: string) => scopes.split(' ').filter(Boolean) as ApiKeyScope[]

function newPrefix (): string {
  return [...randomBytes(12)].map((byte) => BASE32[byte % 32]).join('')
}

export function createApiKeysRepository (db: Database, { record }: Pick<Effects, 'record'>) {
  const now = sql`CURRENT_TIMESTAMP(3)`
  /** Not revoked, not expired, not cut off (the session rule); needs `users` joined. */
  const isLive = () => and(isNull(apiKeys.revoked_at), or(isNull(apiKeys.expires_at), gt(apiKeys.expires_at, now)), eq(apiKeys.generation, users.session_generation))

  // On the request path of every request with a key: one statement, prepared once. The key, its
  // user, and whether it is live (not revoked, not expired, not cut off: the session rule of
  // repositories/sessions.ts), by the unique prefix index and the users primary key.
  const byPrefix = db.select({
    id: apiKeys.id,
    secretHash: apiKeys.secret_hash,
    scopes: apiKeys.scopes,
    live: sql<number>`${apiKeys.revoked_at} IS NULL AND (${apiKeys.expires_at} IS NULL OR ${apiKeys.expires_at} > ${now}) AND ${apiKeys.generation} = ${users.session_generation}`.mapWith(Number),
    stale: sql<number>`${apiKeys.last_used_at} IS NULL OR ${apiKeys.last_used_at} < ${now} - INTERVAL ${MINUTE_MS * 1000} MICROSECOND`.mapWith(Number),
    user: userColumns,
    // GET /me's second factors, as the token check reads them (repositories/tokens.ts).
    totp: sql<number>`(SELECT ${totpCredentials.enabled_at} IS NOT NULL FROM ${totpCredentials} FORCE INDEX (PRIMARY) WHERE ${totpCredentials.user_id} = ${users.id})`.mapWith(Number),
    recoveryCodesLeft: sql<number>`(SELECT COUNT(*) FROM ${recoveryCodes} FORCE INDEX (recovery_codes_user_hash_unique) WHERE ${recoveryCodes.user_id} = ${users.id} AND ${recoveryCodes.used_at} IS NULL)`.mapWith(Number),
    passkeys: sql<number>`(SELECT COUNT(*) FROM ${passkeys} FORCE INDEX (passkeys_user_id_id_idx) WHERE ${passkeys.user_id} = ${users.id})`.mapWith(Number),
  }).from(apiKeys).innerJoin(users, eq(users.id, apiKeys.user_id)).where(eq(apiKeys.prefix, sql.placeholder('prefix'))).prepare()

  return {
    /**
     * A new key for the user, at the user's current generation, and its `api_key.created` event,
     * in one transaction. The token is returned once; only its hash is kept.
     */
    async create (userId: number, { name, scopes, expiresAt }: { name: string, scopes: ApiKeyScope[], expiresAt: Date | null }, context: EventContext): Promise<ApiKey & { token: string }> {
      const prefix = newPrefix()
      const secret = randomBytes(32).toString('base64url')
      const id = await db.transaction(async (tx) => {
        const [result] = await tx.insert(apiKeys).values({
          user_id: userId,
          name,
          scopes: scopes.join(' '),
          prefix,
          secret_hash: sha256(secret).toString('hex'),
          expires_at: expiresAt,
          generation: sql`(SELECT ${users.session_generation} FROM ${users} WHERE ${users.id} = ${userId})`,
        })
        await record(tx as unknown as Database, { type: 'api_key.created', subject_user_id: userId, context, details: { key: result.insertId, name, scopes } })
        return result.insertId
      })
      const [row] = await db.select(keyColumns).from(apiKeys).where(eq(apiKeys.id, id))
      return { ...row!, scopes: parseScopes(row!.scopes), token: `bk_${prefix}_${secret}` }
    },

    /**
     * The key if the token is one of ours, live, with the right secret; 'dead' when it is ours but
     * revoked, expired or cut off; null when it is not ours at all. The same work
     * for an unknown prefix and a wrong secret (one indexed read, one constant-time compare). Its
     * last use is written at most once a minute.
     */
    async check (token: string): Promise<LiveApiKey | 'dead' | null> {
      const wellFormed = API_KEY_PATTERN.test(token)
      const prefix = wellFormed ? token.slice(3, 15) : ''
      const [row] = wellFormed ? await byPrefix.execute({ prefix }) : []
      const matches = timingSafeEqual(sha256(wellFormed ? token.slice(16) : ''), row ? Buffer.from(row.secretHash, 'hex') : DUMMY_HASH)
      if (!row || !matches) return null
      if (!row.live) return 'dead'
      if (row.stale) {
        await db.update(apiKeys).set({ last_used_at: now })
          .where(and(eq(apiKeys.id, row.id), or(isNull(apiKeys.last_used_at), lt(apiKeys.last_used_at, sql`${now} - INTERVAL ${MINUTE_MS * 1000} MICROSECOND`))))
      }
      return { id: row.id, scopes: parseScopes(row.scopes), user: row.user, mfa: { totp: Boolean(row.totp), passkeys: row.passkeys, recovery_codes_left: row.recoveryCodesLeft } }
    },

    /** The user's live keys, newest first (api_keys_user_id_id_idx). No secrets. */
    async list (userId: number, { limit, beforeId }: { limit: number, beforeId?: number }): Promise<ApiKey[]> {
      const rows = await db.select(keyColumns).from(apiKeys, { forceIndex: 'api_keys_user_id_id_idx' })
        .innerJoin(users, eq(users.id, apiKeys.user_id))
        .where(and(
          eq(apiKeys.user_id, userId),
          lt(apiKeys.id, beforeId ?? Number.MAX_SAFE_INTEGER),
          isLive(),
        ))
        .orderBy(desc(apiKeys.id)).limit(limit + 1)
      return rows.map((row) => ({ ...row, scopes: parseScopes(row.scopes) }))
    },

    /** One of the user's live keys, or null. */
    async find (userId: number, id: number): Promise<ApiKey | null> {
      const [row] = await db.select(keyColumns).from(apiKeys).innerJoin(users, eq(users.id, apiKeys.user_id))
        .where(and(eq(apiKeys.id, id), eq(apiKeys.user_id, userId), isLive()))
      return row ? { ...row, scopes: parseScopes(row.scopes) } : null
    },

    /** Revokes one of the user's live keys with its event; false when there is none by that id. */
    async revoke (userId: number, id: number, context: EventContext): Promise<boolean> {
      return db.transaction(async (tx) => {
        const [result] = await tx.update(apiKeys).set({ revoked_at: now })
          .where(and(eq(apiKeys.id, id), eq(apiKeys.user_id, userId), isNull(apiKeys.revoked_at)))
        if (result.affectedRows !== 1) return false
        await record(tx as unknown as Database, { type: 'api_key.revoked', subject_user_id: userId, context, details: { key: id } })
        return true
      })
    },
  }
}

export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>
