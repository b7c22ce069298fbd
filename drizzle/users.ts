import { bigint, datetime, index, mysqlEnum, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

export const users = mysqlTable('users', {
  // Not serial(): drizzle renders it as `serial AUTO_INCREMENT`, which MariaDB rejects.
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  // Stored lower-case by the API; the unique index is what makes "taken" race-free.
  email: varchar('email', { length: 254 }).notNull(),
  name: varchar('name', { length: 80 }).notNull(),
  password_hash: varchar('password_hash', { length: 255 }).notNull(),
  role: mysqlEnum('role', ['user', 'admin']).notNull().default('user'),
  // Sessions started at or before this instant are dead (global logout, role change, password
  // change). Millisecond precision, so a login in the same second as a global logout survives.
  tokens_valid_after: datetime('tokens_valid_after', { mode: 'date', fsp: 3 }),
  // The one session that survives the cut-off above ("logout others", password change).
  kept_session_id: varchar('kept_session_id', { length: 36 }),
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
