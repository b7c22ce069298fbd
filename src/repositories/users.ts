import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm'
import { users } from '../../drizzle/schema.js'
import { AppError } from '../errors.js'
import { isDuplicateKey } from '../db/errors.js'
import type { Database } from '../db/database.js'
import type { User } from '../schemas/shared.js'
import { cutOffSessions } from './sessions.js'
import { bumpCounter } from './change-counters.js'
import type { Effects, EventContext } from './events.js'

// Explicit columns: only login and password changes read password_hash. Also what the API-key
// check reads of its user (repositories/api-keys.ts).
export const userColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: users.role,
  email_verified_at: users.email_verified_at,
  created_at: users.created_at,
  updated_at: users.updated_at,
}

export type Role = 'user' | 'admin'

export interface NewUser {
  email: string
  name: string
  password_hash: string
  role?: Role
  /** Set only by the operator's CLI (create-admin, seed): nobody else can vouch for an address. */
  email_verified_at?: Date
}

/** See refuseIfLastAdmin(). */
const ADMIN_CHECK = { isolationLevel: 'read committed' } as const

const emailTaken = () => new AppError(409, 'email_taken', 'An account with this email already exists')
const lastAdmin = () => new AppError(409, 'last_admin', 'The last admin cannot stop being an admin; make another user admin first')

export function createUsersRepository (db: Database, { record, enqueueMail }: Effects) {
  // On the request path of /me and /refresh: prepared once (see repositories/boards.ts).
  const byId = db.select(userColumns).from(users).where(eq(users.id, sql.placeholder('id'))).prepare()

  async function findById (id: number): Promise<User | null> {
    const [row] = await byId.execute({ id })
    return row ?? null
  }

  /**
   * Inside a transaction: refuses when `id` is the only admin. For an admin it first bumps the
   * `admins` counter (drizzle/change-counters.ts): on one server its lock queues every such check, so
   * two admins demoting each other cannot both succeed; on a Galera cluster, where a locking read
   * on one node does not stop a write on another, both transactions have written that row, and
   * certification fails the one that commits second. Two admin rows are then enough to know
   * (ours and one other); the role index keeps this to two rows read however many users there
   * are. The transactions that run it are READ COMMITTED (ADMIN_CHECK above): under REPEATABLE
   * READ the locking read also locks the gaps of the role index, and the role change's own insert
   * into that index then deadlocks with a concurrent check waiting on the same admin.
   */
  async function refuseIfLastAdmin (tx: Database, id: number): Promise<void> {
    // Only an admin can be the last one; other users' deletions need not queue (nor, on Galera,
    // conflict) on the guard row. A user promoted meanwhile leaves their promoter an admin.
    const [target] = await tx.select({ role: users.role }).from(users).where(eq(users.id, id))
    if (target?.role !== 'admin') return
    await bumpCounter(tx, 'admins')
    const admins = await tx.select({ id: users.id }).from(users, { forceIndex: 'users_role_idx' })
      .where(eq(users.role, 'admin')).orderBy(asc(users.id)).limit(2).for('update')
    if (admins.length === 1 && admins[0]!.id === id) throw lastAdmin()
  }

  return {
    findById,

    /**
     * Inserts the user, their `user.registered` event and (unless the address is vouched for) the
     * verification mail, in one transaction; the unique index on email turns a taken address into
     * 409, race-free.
     */
    async create (user: NewUser, context: EventContext): Promise<User> {
      try {
        const id = await db.transaction(async (tx) => {
          const [result] = await tx.insert(users).values(user)
          const id = result.insertId
          await record(tx as unknown as Database, { type: 'user.registered', subject_user_id: id, context, details: { role: user.role ?? 'user' } })
          if (!user.email_verified_at) await enqueueMail(tx as unknown as Database, 'email_verification', id)
          return id
        })
        return (await findById(id))!
      } catch (error) {
        if (isDuplicateKey(error)) throw emailTaken()
        throw error
      }
    },

    /**
     * Keyset page by id; `limit + 1` rows so the caller knows whether a next page exists. A range
     * on the primary key (ids start at 1), forced, so the page is read in index order and never
     * sorted.
     */
    async list ({ limit, afterId = 0 }: { limit: number, afterId?: number }): Promise<User[]> {
      return db.select(userColumns).from(users, { forceIndex: 'PRIMARY' })
        .where(gt(users.id, afterId))
        .orderBy(asc(users.id)).limit(limit + 1)
    },

    /** The user with this (normalised) email, through users_email_unique. */
    async findByEmail (email: string): Promise<User | null> {
      const [row] = await db.select(userColumns).from(users).where(eq(users.email, email))
      return row ?? null
    },

    async exists (id: number): Promise<boolean> {
      const [row] = await db.select({ id: users.id }).from(users).where(eq(users.id, id))
      return row !== undefined
    },

    /**
     * What a password check needs, in one read: the hash, the session generation a login then
     * stamps on its session (or its second-factor challenge), so that a reset or change committed
     * while argon2 runs leaves that session dead (API.md §12), and whether a second factor is
     * still to come (API.md §13; the TOTP row by its primary key) and whether a passkey may give it
     * (API.md §14; the first of the user's passkeys on their index).
     */
    async findCredentials (where: { email: string } | { id: number }): Promise<(User & { password_hash: string | null, session_generation: number, totp_enabled: boolean, has_passkey: boolean }) | null> {
      const condition = 'email' in where ? eq(users.email, where.email) : eq(users.id, where.id)
      const [row] = await db.select({
        ...userColumns,
        password_hash: users.password_hash,
        session_generation: users.session_generation,
        // Names spelt out: drizzle writes a one-table select's columns unqualified, and a bare `id`
        // inside a subquery is the subquery table's own when it has one (passkeys has).
        totp_enabled: sql<boolean>`EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = ${users}.id AND t.enabled_at IS NOT NULL)`.mapWith(Boolean),
        has_passkey: sql<boolean>`EXISTS (SELECT 1 FROM passkeys p FORCE INDEX (passkeys_user_id_id_idx) WHERE p.user_id = ${users}.id)`.mapWith(Boolean),
      }).from(users).where(condition)
      return row ?? null
    },

    /**
     * A login's upgrade of a weak hash to the current parameters. Only if the hash is still the
     * one the login checked: a reset committed meanwhile must not be undone by a rehash of the
     * old password.
     */
    async rehashPassword (id: number, checkedHash: string, passwordHash: string): Promise<void> {
      await db.update(users).set({ password_hash: passwordHash }).where(and(eq(users.id, id), eq(users.password_hash, checkedHash)))
    },

    /**
     * Sets a new password and ends every session of the user but `keptSessionId`, in one
     * transaction (API.md §12). With `checkedHash`, only if the password is still the one the
     * caller verified (false otherwise: a reset or another change won the race).
     */
    async changePassword (id: number, passwordHash: string, { checkedHash, keptSessionId, context }: { checkedHash?: string | null, keptSessionId: string | null, context: EventContext }): Promise<boolean> {
      return db.transaction(async (tx) => {
        const [result] = await tx.update(users).set({ password_hash: passwordHash, updated_at: sql`CURRENT_TIMESTAMP(3)` })
          .where(and(eq(users.id, id), checkedHash === undefined ? undefined : checkedHash === null ? isNull(users.password_hash) : eq(users.password_hash, checkedHash)))
        if (result.affectedRows !== 1) return false
        await cutOffSessions(tx as unknown as Database, id, keptSessionId)
        await record(tx as unknown as Database, { type: 'password.changed', subject_user_id: id, context, details: { sessions_ended: keptSessionId ? 'others' : 'all' } })
        return true
      })
    },

    /**
     * Changes name, email and role together, or nothing: one transaction. A real role change
     * also ends every session the user has (API.md §4: it revokes the user's tokens), and a
     * demotion of the last admin is refused before anything is written. The events (`user.updated`
     * with the fields that changed, `user.role_changed`) and a new address's verification mail are
     * written in the same transaction.
     */
    async update (id: number, changes: { name?: string, email?: string, role?: Role }, context: EventContext): Promise<void> {
      const { role, ...profile } = changes
      try {
        await db.transaction(async (tx) => {
          // Admin rows first, then the user's: the same lock order as delete(), so concurrent
          // demotions and deletions queue instead of deadlocking.
          if (role === 'user') await refuseIfLastAdmin(tx as unknown as Database, id)
          const [current] = await tx.select({ role: users.role, email: users.email, name: users.name }).from(users).where(eq(users.id, id)).for('update')
          const roleChanges = current !== undefined && role !== undefined && role !== current.role
          // API.md §10: a new address is unverified until a mail sent to it comes back.
          const emailChanges = current !== undefined && profile.email !== undefined && profile.email !== current.email
          await tx.update(users).set({
            ...profile,
            ...(emailChanges && { email_verified_at: null }),
            ...(roleChanges && { role }),
            updated_at: sql`CURRENT_TIMESTAMP(3)`,
          }).where(eq(users.id, id))
          const executor = tx as unknown as Database
          if (roleChanges) {
            await cutOffSessions(executor, id, null)
            await record(executor, { type: 'user.role_changed', subject_user_id: id, context, details: { from: current.role, to: role } })
          }
          const fields = current === undefined ? [] : (['name', 'email'] as const).filter((field) => profile[field] !== undefined && profile[field] !== current[field])
          if (fields.length > 0) await record(executor, { type: 'user.updated', subject_user_id: id, context, details: { fields } })
          if (emailChanges) await enqueueMail(executor, 'email_verification', id)
        }, ADMIN_CHECK)
      } catch (error) {
        if (isDuplicateKey(error)) throw emailTaken()
        throw error
      }
    },

    /** Deletes the user (their boards go by ON DELETE CASCADE). Refuses to delete the last admin. */
    async delete (id: number, context: EventContext): Promise<void> {
      await db.transaction(async (tx) => {
        await refuseIfLastAdmin(tx as unknown as Database, id)
        const [result] = await tx.delete(users).where(eq(users.id, id))
        if (result.affectedRows === 1) await record(tx as unknown as Database, { type: 'user.deleted', subject_user_id: id, context })
      }, ADMIN_CHECK)
    },

    /** "Log out others" (keeping `keptSessionId`) or "log out everywhere" (null): see cutOffSessions(). */
    async endSessions (id: number, keptSessionId: string | null, context: EventContext): Promise<void> {
      await db.transaction(async (tx) => {
        await cutOffSessions(tx as unknown as Database, id, keptSessionId)
        await record(tx as unknown as Database, { type: 'logout', subject_user_id: id, context, details: { scope: keptSessionId ? 'others' : 'global' } })
      })
    },
  }
}
