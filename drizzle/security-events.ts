import { bigint, datetime, index, int, mysqlTable, text, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

// The audit log (API.md §15): one row per security-relevant change, written in the same
// transaction as the change it records, so a change without its event (or an event of a change
// that rolled back) cannot exist. No foreign keys: the log outlives the users and sessions it
// names (a `user.deleted` event must survive its user), and it is removed only by age
// (AUDIT_RETENTION). Never a secret: no password, token, code or hash goes into `details`.
export const securityEvents = mysqlTable('security_events', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  type: varchar('type', { length: 40 }).notNull(),
  occurred_at: datetime('occurred_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  // Who did it (null: nobody signed in, e.g. a login or a reset link) and to whom.
  actor_id: bigint('actor_id', { mode: 'number', unsigned: true }),
  subject_user_id: bigint('subject_user_id', { mode: 'number', unsigned: true }),
  session_id: varchar('session_id', { length: 36 }),
  ip: varchar('ip', { length: 45 }),
  user_agent: varchar('user_agent', { length: 255 }),
  request_id: varchar('request_id', { length: 64 }),
  // A JSON object; TEXT because MariaDB's JSON is LONGTEXT with a check, and nothing queries inside.
  details: text('details').notNull(),
  // Failed logins past a threshold are not one row each (a flood must not fill the disk): they
  // are counted into one row per email, type and minute, found by this key (null on every other
  // row; a unique index allows any number of nulls).
  aggregate_key: varchar('aggregate_key', { length: 96 }),
  count: int('count', { unsigned: true }).notNull().default(1),
}, (table) => [
  // "A user's events, newest first": a backward walk from the cursor.
  index('security_events_subject_id_idx').on(table.subject_user_id, table.id),
  // "Events of a type, newest first" (GET /admin/events?type=), and of a type for one user.
  index('security_events_type_id_idx').on(table.type, table.id),
  index('security_events_subject_type_id_idx').on(table.subject_user_id, table.type, table.id),
  // The retention purge and `events export --since`.
  index('security_events_occurred_at_idx').on(table.occurred_at),
  uniqueIndex('security_events_aggregate_key_unique').on(table.aggregate_key),
])
