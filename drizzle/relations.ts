import { relations } from 'drizzle-orm'
import { users } from './users.js'
import { tokenBlocklist } from './token-blocklist.js'

export const usersRelations = relations(users, ({ many }) => ({
  revokedTokens: many(tokenBlocklist),
}))

export const tokenBlocklistRelations = relations(tokenBlocklist, ({ one }) => ({
  user: one(users, { fields: [tokenBlocklist.user_id], references: [users.id] }),
}))
