import { bigint, boolean, char, datetime, index, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

// Sign in with an OpenID Connect provider (API.md §17). Three tables.

// A provider account linked to one of ours. Keyed by (issuer, subject), never by email: the `sub`
// is the provider's stable id for the person, an email can change hands (OpenID Connect Core §5.7).
export const federatedIdentities = mysqlTable('federated_identities', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  // Our id of the provider (OIDC_PROVIDERS), for display; the issuer is what identifies it.
  provider: varchar('provider', { length: 32 }).notNull(),
  issuer: varchar('issuer', { length: 255 }).notNull(),
  subject: varchar('subject', { length: 255 }).notNull(),
  // The email the provider gave at the last sign-in, for display only.
  email: varchar('email', { length: 254 }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  last_used_at: datetime('last_used_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  // A sign-in finds its account here; the unique index makes "already linked" race-free.
  uniqueIndex('federated_identities_issuer_subject_unique').on(table.issuer, table.subject),
  // GET /me/identities and the last-way-to-sign-in count; also the foreign key's index.
  index('federated_identities_user_id_idx').on(table.user_id),
])

// A sign-in under way: from GET /auth/oidc/:provider to its callback. In the database, not in a
// process, so the callback may land on any instance. Keyed by the SHA-256 of `state`: the state
// itself is only in the browser's __Host-oidc cookie and in the provider's redirect, so a leaked
// table cannot finish anyone's sign-in. Single-use (spent_at), and short-lived.
export const oidcLogins = mysqlTable('oidc_logins', {
  state_hash: char('state_hash', { length: 64 }).primaryKey(),
  provider: varchar('provider', { length: 32 }).notNull(),
  // Where the browser goes back to (one of OIDC_REDIRECT_URIS), and the callback URL the provider
  // was given (the token request must repeat it, RFC 6749 §4.1.3).
  redirect_uri: varchar('redirect_uri', { length: 2048 }).notNull(),
  callback_uri: varchar('callback_uri', { length: 2048 }).notNull(),
  nonce: varchar('nonce', { length: 128 }).notNull(),
  // PKCE (RFC 7636). Useless without the authorization code, which only the browser carries back.
  code_verifier: varchar('code_verifier', { length: 128 }).notNull(),
  // Set when a signed-in user links a provider (POST /me/identities/:provider/link).
  link_user_id: bigint('link_user_id', { mode: 'number', unsigned: true }).references(() => users.id, { onDelete: 'cascade' }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  spent_at: datetime('spent_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  index('oidc_logins_link_user_id_idx').on(table.link_user_id),
  // The purge deletes by expiry.
  index('oidc_logins_expires_at_idx').on(table.expires_at),
])

// The one-time code a callback hands the browser (redirect_uri#code=…), for POST /auth/oidc/exchange.
// It carries what the verified ID token said; the account is chosen at the exchange, in one
// transaction with the session. Only the SHA-256 of the code is stored; single-use, short-lived.
export const oidcExchangeCodes = mysqlTable('oidc_exchange_codes', {
  code_hash: char('code_hash', { length: 64 }).primaryKey(),
  provider: varchar('provider', { length: 32 }).notNull(),
  issuer: varchar('issuer', { length: 255 }).notNull(),
  subject: varchar('subject', { length: 255 }).notNull(),
  email: varchar('email', { length: 254 }),
  email_verified: boolean('email_verified').notNull().default(false),
  name: varchar('name', { length: 80 }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  spent_at: datetime('spent_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  index('oidc_exchange_codes_expires_at_idx').on(table.expires_at),
])
