import { bigint, datetime, index, int, mysqlEnum, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

export const users = mysqlTable('users', {
  // Not serial(): drizzle renders it as `serial AUTO_INCREMENT`, which MariaDB rejects.
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  // Stored lower-case by the API; the unique index is what makes "taken" race-free.
  email: varchar('email', { length: 254 }).notNull(),
  name: varchar('name', { length: 80 }).notNull(),
  // Null for an account made by a sign-in with a provider (API.md §17): no password logs into it.
  password_hash: varchar('password_hash', { length: 255 }),
  role: mysqlEnum('role', ['user', 'admin']).notNull().default('user'),
  // The cut-off of every session (API.md §12): a session is live only while its `generation`
  // equals this. A password change, a reset, a role change and "log out others/everyone" add one,
  // in the same transaction as the change, so every session of before dies at once; the one a
  // change keeps (the caller's) is moved to the new value in that transaction. A counter, not a
  // time: no clock (the instance's or a Galera node's) decides, and a login whose password check
  // began before a change carries the generation it read with the hash, so it dies too.
  session_generation: int('session_generation', { unsigned: true }).notNull().default(0),
  // When the user proved they read mail at `email` (API.md §10); null until then, and again
  // after the email changes.
  email_verified_at: datetime('email_verified_at', { mode: 'date', fsp: 3 }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  updated_at: datetime('updated_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
}, (table) => [
  uniqueIndex('users_email_unique').on(table.email),
  // The last-admin check reads the admins, and only them, under a lock (repositories/users.ts).
  index('users_role_idx').on(table.role),
])

export type UserRow = typeof users.$inferSelect
