import { bigint, datetime, index, mysqlEnum, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

// One row per spent refresh token (`refresh`): the gate of its rotation and the time of it, for
// reuse detection. Sessions are ended in the sessions table; `access` and `session` rows are
// no longer written (the purge removes old ones as they expire). No foreign key to users: rows must outlive a deleted user
// until they expire, and the purge job removes them by `expires_at`.
export const tokenBlocklist = mysqlTable('token_blocklist', {
  jti: varchar('jti', { length: 36 }).primaryKey(),
  kind: mysqlEnum('kind', ['access', 'refresh', 'session']).notNull(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull(),
  expires_at: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
}, (table) => [index('token_blocklist_expires_at_idx').on(table.expires_at)])
