import { eq } from 'drizzle-orm'
import { users } from '../../drizzle/schema.js'
import { AppError } from '../errors.js'
import { isDuplicateKey } from '../db/errors.js'
import type { Database } from '../db/database.js'
import type { User } from '../schemas/shared.js'

// Explicit columns: only login ever reads password_hash.
const userColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: users.role,
  created_at: users.created_at,
  updated_at: users.updated_at,
}

export interface NewUser {
  email: string
  name: string
  password_hash: string
  role?: 'user' | 'admin'
}

export function createUsersRepository (db: Database) {
  async function findById (id: number): Promise<User | null> {
    const [row] = await db.select(userColumns).from(users).where(eq(users.id, id))
    return row ?? null
  }

  return {
    findById,

    /** Inserts the user; the unique index on email turns a taken address into 409, race-free. */
    async create (user: NewUser): Promise<User> {
      try {
        const [result] = await db.insert(users).values(user)
        return (await findById(result.insertId))!
      } catch (error) {
        if (isDuplicateKey(error)) throw new AppError(409, 'email_taken', 'An account with this email already exists')
        throw error
      }
    },

    async findCredentials (email: string): Promise<(User & { password_hash: string }) | null> {
      const [row] = await db.select({ ...userColumns, password_hash: users.password_hash }).from(users).where(eq(users.email, email))
      return row ?? null
    },

    async updatePasswordHash (id: number, passwordHash: string): Promise<void> {
      await db.update(users).set({ password_hash: passwordHash }).where(eq(users.id, id))
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
