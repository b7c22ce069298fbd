import { bigint, char, datetime, index, int, mysqlTable, tinyint, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

// The second factor (API.md §13). Three tables, each gone with its user.

// A user's TOTP secret (RFC 6238), one row per user: written by POST /mfa/totp/setup with
// `enabled_at` null (nothing is active yet), enabled by a first code, deleted by a disable.
export const totpCredentials = mysqlTable('totp_credentials', {
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  // AES-256-GCM under a key derived from JWT_KEY_ENCRYPTION_SECRET, the user id as additional
  // data (src/mfa/totp.ts): "v1.<iv>.<tag>.<ciphertext>", base64url. A leaked table or backup
  // holds no usable secret.
  secret: varchar('secret', { length: 255 }).notNull(),
  enabled_at: datetime('enabled_at', { mode: 'date', fsp: 3 }),
  // The time step (Unix time / 30 s) of the last code accepted: a code of this step or an earlier
  // one is refused, so each code works once (RFC 6238 §5.2). Moved by a conditional UPDATE, which
  // makes the check and the write one atomic step across instances.
  last_used_step: bigint('last_used_step', { mode: 'number', unsigned: true }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
})

// Single-use recovery codes: 10 per user while TOTP is on, replaced all at once by new ones.
// Only the SHA-256 of each is stored: the codes are 80 random bits, so no salt or slow hash is
// needed for a leaked table to be useless.
export const recoveryCodes = mysqlTable('recovery_codes', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  code_hash: char('code_hash', { length: 64 }).notNull(),
  used_at: datetime('used_at', { mode: 'date', fsp: 3 }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
}, (table) => [
  // Spending a code finds it by (user, hash); counting the codes left walks the user's ≤ 10
  // entries. Also the foreign key's index.
  uniqueIndex('recovery_codes_user_hash_unique').on(table.user_id, table.code_hash),
])

// The `mfa_token` of a login that still needs its second factor (POST /login → POST /login/mfa).
// In the database, not in a process, so any instance can finish a login another one began.
export const mfaChallenges = mysqlTable('mfa_challenges', {
  // The SHA-256 of the token (hex): the token itself is never stored.
  token_hash: char('token_hash', { length: 64 }).primaryKey(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  // users.session_generation read with the password hash the login checked: a password change,
  // a reset, a role change or a logout of every session in between voids the challenge, as it
  // would a session (drizzle/users.ts).
  session_generation: int('session_generation', { unsigned: true }).notNull(),
  // How the first step was proved (RFC 8176): 'pwd' (POST /login) or 'fed' (a provider's sign-in,
  // POST /auth/oidc/exchange). The session the code finishes carries it before 'otp'.
  first_factor: varchar('first_factor', { length: 8 }).notNull().default('pwd'),
  // Wrong codes so far; the one that reaches the limit spends the challenge.
  attempts: tinyint('attempts', { unsigned: true }).notNull().default(0),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  spent_at: datetime('spent_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  index('mfa_challenges_user_id_idx').on(table.user_id),
  // The purge deletes by expiry.
  index('mfa_challenges_expires_at_idx').on(table.expires_at),
])
