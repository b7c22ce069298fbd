import { bigint, char, datetime, index, mysqlEnum, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

// Password-reset and email-verification tokens (API.md §10). A token is a split token: a
// random `selector` that finds the row through its unique index, and a random verifier of
// which only the SHA-256 is stored and which is compared in constant time. A leaked table
// therefore holds no usable token, and the lookup does not time-leak the secret part.
export const oneTimeTokens = mysqlTable('one_time_tokens', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  purpose: mysqlEnum('purpose', ['password_reset', 'email_verification']).notNull(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  // The address the mail went to: a token is good only while it is still the user's email.
  email: varchar('email', { length: 254 }).notNull(),
  // Hex: 16 random bytes, and the SHA-256 of 32 more.
  selector: char('selector', { length: 32 }).notNull(),
  verifier_hash: char('verifier_hash', { length: 64 }).notNull(),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  // Set when the token is used, and when a newer token of the same purpose voids it.
  spent_at: datetime('spent_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  uniqueIndex('one_time_tokens_selector_unique').on(table.selector),
  // "This user's tokens of this purpose, newest last": voiding older ones and counting the
  // mails of the last hour walk it. Also the foreign key's index.
  index('one_time_tokens_user_purpose_created_idx').on(table.user_id, table.purpose, table.created_at),
  // The purge deletes by expiry.
  index('one_time_tokens_expires_at_idx').on(table.expires_at),
])
