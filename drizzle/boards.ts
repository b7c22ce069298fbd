import { bigint, datetime, index, mysqlTable, text, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { users } from './users.js'

export const boards = mysqlTable('boards', {
  // Auto-increment ids follow creation order, so "newest first" is `id DESC` and a keyset page
  // needs only the last id: no offset scans, stable while rows are inserted.
  id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
  title: varchar('title', { length: 100 }).notNull(),
  // ≤ 10 000 characters (API.md §5); TEXT holds 65 535 bytes, enough for 4-byte UTF-8.
  content: text('content').notNull(),
  user_id: bigint('user_id', { mode: 'number', unsigned: true }).notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  created_at: datetime('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  updated_at: datetime('updated_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
}, (table) => [
  // "By author, newest first": the author's rows in id order. Also the foreign key's index.
  index('boards_user_id_id_idx').on(table.user_id, table.id),
])
