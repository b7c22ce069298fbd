import { datetime, index, int, mysqlTable, text, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

// The key pairs of API.md §9 (JWT_ALGORITHM EdDSA or ES256), shared by every instance. Read by a
// timer in each instance (src/plugins/auth/keys.ts), never on the request path.
export const signingKeys = mysqlTable('signing_keys', {
  kid: varchar('kid', { length: 64 }).primaryKey(),
  algorithm: varchar('algorithm', { length: 16 }).notNull(),
  // 1, 2, 3… per algorithm. Unique, so of several instances creating the first key at once, or
  // of two rotations at once, exactly one insert wins.
  generation: int('generation', { unsigned: true }).notNull(),
  public_jwk: text('public_jwk').notNull(),
  // AES-256-GCM under JWT_KEY_ENCRYPTION_SECRET: "v1.<iv>.<tag>.<ciphertext>", base64url.
  private_key: text('private_key').notNull(),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  activates_at: datetime('activates_at', { mode: 'date', fsp: 3 }).notNull(),
  retires_at: datetime('retires_at', { mode: 'date', fsp: 3 }),
  revoked_at: datetime('revoked_at', { mode: 'date', fsp: 3 }),
  // Moves on every insert and update (the instances poll the `signing_keys` change counter instead).
  updated_at: datetime('updated_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`).$onUpdate(() => sql`CURRENT_TIMESTAMP(3)`),
}, (table) => [
  uniqueIndex('signing_keys_algorithm_generation_idx').on(table.algorithm, table.generation),
  index('signing_keys_updated_at_idx').on(table.updated_at),
])
