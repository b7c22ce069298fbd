import { and, desc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm'
import { sessions, tokenBlocklist, users } from '../../drizzle/schema.js'
import { isDuplicateKey } from '../db/errors.js'
import { isConflict } from '../db/cluster.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import type { Effects, EventContext, NewEvent } from './events.js'

/** A session as API.md §7 shows it, less `current` (which depends on the caller). */
export interface SessionRow {
  id: string
  created_at: Date
  last_used_at: Date
  expires_at: Date
  user_agent: string | null
  ip: string | null
}

export interface NewSession {
  id: string
  user_id: number
  created_at: Date
  expires_at: Date
  user_agent: string | null
  ip: string | null
  /** The user's session_generation read with the password hash the login checked. */
  generation: number
  /** How the login was proved (RFC 8176): `['pwd']`, or `['pwd', 'otp']` with a second factor. */
  amr: readonly string[]
}

/** Where a keyset page of sessions starts: after this (last_used_at, id) in descending order. */
export interface SessionCursor {
  lastUsedAt: Date
  id: string
}

const sessionColumns = {
  id: sessions.id,
  created_at: sessions.created_at,
  last_used_at: sessions.last_used_at,
  expires_at: sessions.expires_at,
  user_agent: sessions.user_agent,
  ip: sessions.ip,
}

/**
 * A session is live when it has not been ended, can still be refreshed, and was not cut off by
 * a password change, a reset, a role change or a logout of others (its generation is still the
 * user's: the same rule as the token check in repositories/tokens.ts). Needs `users` joined.
 */
const isLive = (now: Date) => and(
  isNull(sessions.ended_at),
  gt(sessions.expires_at, now),
  eq(sessions.generation, users.session_generation),
)

/**
 * Ends every session of the user, except `keptSessionId` (the caller's own, for "log out others"
 * and a password change), inside the caller's transaction (API.md §12: the change and its
 * cut-off are all or nothing). Two primary-key updates: the user's generation goes up by one,
 * which kills every session still on the old one, and the kept session moves to the new one.
 */
export async function cutOffSessions (tx: Database, userId: number, keptSessionId: string | null): Promise<void> {
  await tx.update(users).set({ session_generation: sql`${users.session_generation} + 1` }).where(eq(users.id, userId))
  if (keptSessionId === null) return
  await tx.update(sessions)
    .set({ generation: sql`(SELECT ${users.session_generation} FROM ${users} WHERE ${users.id} = ${userId})` })
    .where(and(eq(sessions.id, keptSessionId), eq(sessions.user_id, userId)))
}

/** A new login's session row and its `login.succeeded` event, inside the caller's transaction. */
export async function insertSession (tx: Database, record: Effects['record'], session: NewSession, context: EventContext): Promise<void> {
  await tx.insert(sessions).values({ ...session, amr: session.amr.join(','), last_used_at: session.created_at })
  await record(tx, { type: 'login.succeeded', subject_user_id: session.user_id, context: { ...context, session_id: session.id }, details: { amr: session.amr } })
}

export function createSessionsRepository (db: Database, { record }: Pick<Effects, 'record'>) {
  return {
    /** Records a new login and its `login.succeeded` event: two inserts, one commit. */
    async start (session: NewSession, context: EventContext): Promise<void> {
      await db.transaction(async (tx) => insertSession(tx as unknown as Database, record, session, context))
    },

    /**
     * A refresh: spends the presented refresh token and records the session's use, in one
     * transaction, so one commit (one log flush) rather than two.
     * - The blocklist insert of the spent jti is the gate: its primary key makes it atomic, so
     *   of concurrent rotations of one token exactly one gets past it ('spent' for the others).
     * - The primary-key update of the session (last use, new expiry, the client as seen now)
     *   finds no row when the session was ended meanwhile, e.g. by a DELETE /sessions/:id racing
     *   this refresh ('ended'): the caller must then refuse, or it would hand out a pair of a
     *   dead session.
     */
    async rotate (
      spent: { jti: string, user_id: number, expires_at: Date },
      id: string,
      changes: { at: Date, expires_at: Date, user_agent: string | null, ip: string | null },
    ): Promise<'rotated' | 'spent' | 'ended'> {
      const { at, ...rest } = changes
      return db.transaction(async (tx) => {
        try {
          await tx.insert(tokenBlocklist).values({ ...spent, kind: 'refresh' })
        } catch (error) {
          // A duplicate key rolls back that statement only; nothing else was written.
          if (isDuplicateKey(error)) return 'spent'
          throw error
        }
        const [result] = await tx.update(sessions).set({ ...rest, last_used_at: at })
          .where(and(eq(sessions.id, id), isNull(sessions.ended_at)))
        return result.affectedRows > 0 ? 'rotated' : 'ended'
      }).catch((error: unknown) => {
        // On a Galera cluster a rotation of the same token through another node that committed
        // first fails this one's certification at commit (1213), not with a duplicate key: the
        // race is lost all the same, and the loser gets the 401 of a spent token (API.md §11).
        if (isConflict(error)) return 'spent' as const
        throw error
      })
    },

    /**
     * The user's live sessions, most recently used first: a backward walk of
     * sessions_user_id_last_used_at_id_idx from the cursor, and one primary-key probe of
     * users (a constant: one user). `limit + 1` rows, so the caller knows whether there is more.
     */
    async list (userId: number, { limit, after }: { limit: number, after?: SessionCursor }, now = new Date()): Promise<SessionRow[]> {
      // Forced (issue 12): after ANALYZE TABLE the optimizer took sessions_expires_at_idx for the
      // `expires_at > now` condition and sorted what it found (test/db/plans.test.ts).
      return db.select(sessionColumns).from(sessions, { forceIndex: 'sessions_user_id_last_used_at_id_idx' })
        .innerJoin(users, eq(users.id, sessions.user_id))
        .where(and(
          eq(sessions.user_id, userId),
          isLive(now),
          after && or(lt(sessions.last_used_at, after.lastUsedAt), and(eq(sessions.last_used_at, after.lastUsedAt), lt(sessions.id, after.id))),
        ))
        .orderBy(desc(sessions.last_used_at), desc(sessions.id))
        .limit(limit + 1)
    },

    /**
     * Ends one live session of the user. False when there is none by that id for this user
     * (unknown, someone else's, already ended, expired): the route answers 404 alike, so a
     * session id never reveals whether it exists. A primary-key read, then a primary-key update
     * that repeats the ended_at condition (ending twice is harmless).
     */
    async end (userId: number, id: string, context: EventContext, now = new Date()): Promise<boolean> {
      const [live] = await db.select({ id: sessions.id }).from(sessions)
        .innerJoin(users, eq(users.id, sessions.user_id))
        .where(and(eq(sessions.id, id), eq(sessions.user_id, userId), isLive(now)))
      if (!live) return false
      await db.transaction(async (tx) => {
        const [result] = await tx.update(sessions).set({ ended_at: now, expires_at: sql`LEAST(${sessions.expires_at}, ${now})` })
          .where(and(eq(sessions.id, id), isNull(sessions.ended_at)))
        if (result.affectedRows === 1) await record(tx as unknown as Database, { type: 'session.ended', subject_user_id: userId, context, details: { session: id } })
      })
      return true
    },

    /**
     * Ends the session whatever its state (logout, refresh-token reuse). Setting expires_at to
     * now lets the purge remove the row: a token whose session has no row is dead as well.
     */
    async endById (id: string, event: NewEvent, now = new Date()): Promise<void> {
      await db.transaction(async (tx) => {
        const [result] = await tx.update(sessions).set({ ended_at: now, expires_at: sql`LEAST(${sessions.expires_at}, ${now})` })
          .where(and(eq(sessions.id, id), isNull(sessions.ended_at)))
        if (result.affectedRows === 1) await record(tx as unknown as Database, event)
      })
    },

    /** Deletes expired and ended sessions (by sessions_expires_at_idx), in batches like the blocklist's purge. */
    purgeExpired (now = new Date(), batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(sessions).where(lt(sessions.expires_at, now)).limit(limit), batchSize)
    },
  }
}
