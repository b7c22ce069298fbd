import { bigint, datetime, index, int, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { users } from './users.js'

// One row per login (API.md §7): the `sid` every token of that login carries. The per-request
// token check needs this row to exist and not be ended, so ending a session is one UPDATE, seen
// by every instance on the next request. A token whose session has no row is dead: that covers
// sessions begun before this table existed, and rows the purge has removed.
export const sessions = mysqlTable('sessions', {
  // The sid: a UUIDv7, whose first 48 bits are `created_at` (src/plugins/auth/tokens.ts).
  id: varchar('id', { length: 36 }).primaryKey(),
  // Sessions go with their user; the tokens of a deleted user fail on the user row anyway.
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull(),
  // The last login or refresh, not every request: a write per request would cost more than the
  // one-round-trip read the token check is.
  last_used_at: datetime('last_used_at', { mode: 'date', fsp: 3 }).notNull(),
  // When the session can no longer be refreshed: its refresh token's expiry, capped by
  // SESSION_MAX_AGE; set to the end time when it is ended, so the purge finds both by this index.
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  ended_at: datetime('ended_at', { mode: 'date', fsp: 3 }),
  user_agent: varchar('user_agent', { length: 255 }),
  // An IPv6 address in its longest text form (IPv4-mapped) is 45 characters.
  ip: varchar('ip', { length: 45 }),
  // The user's session_generation when the login read the password hash: the session is live
  // only while the two are equal (see users.session_generation).
  generation: int('generation', { unsigned: true }).notNull().default(0),
  // How the login that began the session was proved (RFC 8176 `amr`, comma-separated): `pwd`, or
  // `pwd,otp` with a second factor. Every access token of the session carries it, refreshed ones
  // too; sessions begun before the column existed were password logins.
  amr: varchar('amr', { length: 32 }).notNull().default('pwd'),
}, (table) => [
  // "The user's sessions, most recently used first": a keyset walk of this index. Also the
  // foreign key's index.
  index('sessions_user_id_last_used_at_id_idx').on(table.user_id, table.last_used_at, table.id),
  index('sessions_expires_at_idx').on(table.expires_at),
])
