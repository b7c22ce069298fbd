import { asc, eq, gt, sql } from 'drizzle-orm'
import { users } from '../../drizzle/schema.js'
import { AppError } from '../errors.js'
import { isDuplicateKey } from '../db/errors.js'
import type { Database } from '../db/database.js'
import type { User } from '../schemas/shared.js'

// Explicit columns: only login and password changes read password_hash.
const userColumns = {
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

export function createUsersRepository (db: Database) {
  // On the request path of /me and /refresh: prepared once (see repositories/boards.ts).
  const byId = db.select(userColumns).from(users).where(eq(users.id, sql.placeholder('id'))).prepare()

  async function findById (id: number): Promise<User | null> {
    const [row] = await byId.execute({ id })
    return row ?? null
  }

  /**
   * Inside a transaction: refuses when `id` is the only admin. Two admin rows are enough to know
   * (ours and one other), and every such check locks the first admin in id order, so
   * concurrent demotions and deletions queue behind each other: two admins demoting each other
   * cannot both succeed. The role index keeps this to two rows read (and locked) however many
   * users there are; without it, the locking read scanned and locked every user. The
   * transactions that run it are READ COMMITTED (ADMIN_CHECK above): under REPEATABLE READ the
   * locking read also locks the gaps of the role index, and the role change's own insert into
   * that index then deadlocks with a concurrent check waiting on the same admin.
   */
  async function refuseIfLastAdmin (tx: Database, id: number): Promise<void> {
    const admins = await tx.select({ id: users.id }).from(users, { forceIndex: 'users_role_idx' })
      .where(eq(users.role, 'admin')).orderBy(asc(users.id)).limit(2).for('update')
    if (admins.length === 1 && admins[0]!.id === id) throw lastAdmin()
  }

  return {
    findById,

    /** Inserts the user; the unique index on email turns a taken address into 409, race-free. */
    async create (user: NewUser): Promise<User> {
      try {
        const [result] = await db.insert(users).values(user)
        return (await findById(result.insertId))!
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

    async findCredentials (where: { email: string } | { id: number }): Promise<(User & { password_hash: string }) | null> {
      const condition = 'email' in where ? eq(users.email, where.email) : eq(users.id, where.id)
      const [row] = await db.select({ ...userColumns, password_hash: users.password_hash }).from(users).where(condition)
      return row ?? null
    },

    async updatePasswordHash (id: number, passwordHash: string): Promise<void> {
      await db.update(users).set({ password_hash: passwordHash }).where(eq(users.id, id))
    },

    /**
     * Changes name, email and role together, or nothing: one transaction. A real role change
     * also ends every session the user has (API.md §4: it revokes the user's tokens), and a
     * demotion of the last admin is refused before anything is written.
     */
    async update (id: number, changes: { name?: string, email?: string, role?: Role }, at: Date): Promise<void> {
      const { role, ...profile } = changes
      try {
        await db.transaction(async (tx) => {
          // Admin rows first, then the user's: the same lock order as delete(), so concurrent
          // demotions and deletions queue instead of deadlocking.
          if (role === 'user') await refuseIfLastAdmin(tx as unknown as Database, id)
          const [current] = await tx.select({ role: users.role, email: users.email }).from(users).where(eq(users.id, id)).for('update')
          const roleChanges = current !== undefined && role !== undefined && role !== current.role
          // API.md §10: a new address is unverified until a mail sent to it comes back.
          const emailChanges = current !== undefined && profile.email !== undefined && profile.email !== current.email
          await tx.update(users).set({
            ...profile,
            ...(emailChanges && { email_verified_at: null }),
            ...(roleChanges && { role, tokens_valid_after: at, kept_session_id: null }),
            updated_at: sql`CURRENT_TIMESTAMP(3)`,
          }).where(eq(users.id, id))
        }, ADMIN_CHECK)
      } catch (error) {
        if (isDuplicateKey(error)) throw emailTaken()
        throw error
      }
    },

    /** Deletes the user (their boards go by ON DELETE CASCADE). Refuses to delete the last admin. */
    async delete (id: number): Promise<void> {
      await db.transaction(async (tx) => {
        await refuseIfLastAdmin(tx as unknown as Database, id)
        await tx.delete(users).where(eq(users.id, id))
      }, ADMIN_CHECK)
    },

    /**
     * Ends every session of the user that started before `at`, except `keptSessionId` (the
     * caller's own, for "logout others" and a password change).
     */
    async cutOffSessions (id: number, at: Date, keptSessionId: string | null): Promise<void> {
      await db.update(users).set({ tokens_valid_after: at, kept_session_id: keptSessionId }).where(eq(users.id, id))
    },
  }
}
