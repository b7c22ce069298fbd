import { bigint, datetime, index, int, mysqlEnum, mysqlTable, text, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'

// Mail and webhooks waiting to leave (API.md §15; src/outbox/). A row is written in the same
// transaction as what it announces; any instance claims due rows with a lease, sends, and marks
// them sent, or schedules a retry, or gives up (dead) after MAIL_RETRY_FOR.
export const outbox = mysqlTable('outbox', {
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  kind: mysqlEnum('kind', ['password_reset', 'email_verification', 'webhook']).notNull(),
  // Rows with the same key leave in id order, each only after the one before it was sent or
  // given up (webhooks of one user). Null: no order (mails).
  order_key: varchar('order_key', { length: 40 }),
  // A mail's recipient; its link is made when the row is first claimed (see src/outbox/mail.ts).
  user_id: bigint('user_id', { mode: 'number', unsigned: true }),
  // What to send: a webhook's JSON, or a mail as made (encrypted: it carries a live token).
  // Emptied once the row is finished (sent, skipped or dead). skipped: nothing to send after all
  // (the account is gone, or the per-address mail cap was reached).
  payload: text('payload'),
  state: mysqlEnum('state', ['pending', 'sent', 'skipped', 'dead']).notNull().default('pending'),
  attempts: int('attempts', { unsigned: true }).notNull().default(0),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  // When the row may be tried (again); a claim moves it past the lease.
  available_at: datetime('available_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  // The claim under way: whoever holds `claim` may send until `available_at`.
  claim: varchar('claim', { length: 32 }),
  finished_at: datetime('finished_at', { mode: 'date', fsp: 3 }),
  // Why the last attempt failed (an error code, an SMTP or HTTP status); never message text.
  last_error: varchar('last_error', { length: 200 }),
}, (table) => [
  // Due rows: pending, by available_at.
  index('outbox_state_available_at_idx').on(table.state, table.available_at),
  // "Is an earlier row of this key still pending?"
  index('outbox_order_key_state_id_idx').on(table.order_key, table.state, table.id),
  // The purge of finished rows.
  index('outbox_finished_at_idx').on(table.finished_at),
])
