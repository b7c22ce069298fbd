import { bigint, boolean, char, datetime, index, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

// Passkeys (API.md §14): WebAuthn credentials, and the challenges of the ceremonies that make and
// use them. Both gone with their user.

export const passkeys = mysqlTable('passkeys', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  // The credential id the authenticator chose, base64url. WebAuthn allows up to 1023 bytes; the
  // authenticators seen in practice use 16-64. Registration refuses ids over 255 characters
  // (191 bytes) rather than index a wider column.
  credential_id: varchar('credential_id', { length: 255 }).notNull(),
  // The COSE public key (RFC 9052), base64url: a P-256 key is 77 bytes, an RSA-2048 one ~270.
  // Public, so stored as it is: what it verifies is worthless without the authenticator.
  public_key: varchar('public_key', { length: 2048 }).notNull(),
  // The signature counter last seen (WebAuthn §6.1.1). Moved by a conditional UPDATE only forward,
  // so a cloned authenticator replaying an older count is refused on every instance.
  counter: bigint('counter', { mode: 'number', unsigned: true }).notNull().default(0),
  // Comma-separated AuthenticatorTransport values ("internal,hybrid"), handed back in the options
  // so the browser knows where to look.
  transports: varchar('transports', { length: 100 }).notNull().default(''),
  // Backup eligible and backed up (WebAuthn §6.1 flags BE/BS): a synced passkey survives the loss
  // of one device, a device-bound one does not; GET /passkeys shows it.
  backup_eligible: boolean('backup_eligible').notNull().default(false),
  backed_up: boolean('backed_up').notNull().default(false),
  // The authenticator model (all zeros for attestation "none" from most platforms).
  aaguid: char('aaguid', { length: 36 }).notNull(),
  // The WebAuthn user handle the credential was made for (base64url of 32 bytes derived from the
  // user id: src/passkeys/webauthn.ts). A discoverable sign-in hands it back; it must match.
  user_handle: varchar('user_handle', { length: 64 }).notNull(),
  name: varchar('name', { length: 80 }).notNull(),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  last_used_at: datetime('last_used_at', { mode: 'date', fsp: 3 }),
}, (table) => [
  // A sign-in finds the credential by its id, whoever's it is.
  uniqueIndex('passkeys_credential_id_unique').on(table.credential_id),
  // "This user's passkeys" (the list, the count in GET /me, excludeCredentials); also the foreign key's index.
  index('passkeys_user_id_id_idx').on(table.user_id, table.id),
])

// The challenge of one ceremony (WebAuthn §13.4.3): 5 minutes, in the database so that the
// instance that checks the answer need not be the one that made the options. Keyed by the SHA-256
// of the challenge, which the browser signs into clientDataJSON: the answer names its row. Used
// once: the check deletes the row, and of two answers to one challenge only one deletes it.
export const webauthnChallenges = mysqlTable('webauthn_challenges', {
  challenge_hash: char('challenge_hash', { length: 64 }).primaryKey(),
  // 'register' (POST /passkeys/register/options), 'login' (POST /login/passkey/options) or 'mfa'
  // (POST /login/mfa/options): an answer is accepted only by the route of its ceremony.
  purpose: varchar('purpose', { length: 8 }).notNull(),
  // Registration: the user adding the passkey. Sign-in with an email: that user (a credential of
  // anyone else is refused). Discoverable sign-in: null. Second factor: the login's user.
  user_id: bigint('user_id', { mode: 'number', unsigned: true })
    .references(() => users.id, { onDelete: 'cascade' }),
  // Second factor: the SHA-256 of the mfa_token whose login this finishes.
  mfa_token_hash: char('mfa_token_hash', { length: 64 }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
}, (table) => [
  index('webauthn_challenges_user_id_idx').on(table.user_id),
  // The purge deletes by expiry.
  index('webauthn_challenges_expires_at_idx').on(table.expires_at),
])
