import { bigint, char, datetime, index, int, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

// Personal access tokens (API.md §16): `bk_<prefix>_<secret>`. The prefix finds the row through
// its unique index; of the secret (256 random bits) only the SHA-256 is stored and compared in
// constant time (a slow hash buys nothing against a guess of 256 random bits, and would cost
// every request). A leaked table holds no usable key.
export const apiKeys = mysqlTable('api_keys', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  name: varchar('name', { length: 80 }).notNull(),
  // Space-separated, as OAuth writes scopes (RFC 6749 §3.3).
  scopes: varchar('scopes', { length: 200 }).notNull(),
  prefix: char('prefix', { length: 12 }).notNull(),
  secret_hash: char('secret_hash', { length: 64 }).notNull(),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }),
  // Written at most once a minute per key, never on every request.
  last_used_at: datetime('last_used_at', { mode: 'date', fsp: 3 }),
  revoked_at: datetime('revoked_at', { mode: 'date', fsp: 3 }),
  // The user's session_generation when the key was made: like a session, a key lives only while
  // the two are equal, so every cut-off (a reset, a password change, a role change, a logout of
  // others or everywhere) kills the user's keys in the same statement as their sessions.
  generation: int('generation', { unsigned: true }).notNull(),
}, (table) => [
  uniqueIndex('api_keys_prefix_unique').on(table.prefix),
  // "This user's keys, newest first"; also the foreign key's index.
  index('api_keys_user_id_id_idx').on(table.user_id, table.id),
])
