import { relations } from 'drizzle-orm'
import { users } from './users.js'
import { boards } from './boards.js'
import { tokenBlocklist } from './token-blocklist.js'
import { oneTimeTokens } from './one-time-tokens.js'
import { sessions } from './sessions.js'
import { apiKeys } from './api-keys.js'

export const usersRelations = relations(users, ({ many }) => ({
  boards: many(boards),
  revokedTokens: many(tokenBlocklist),
  oneTimeTokens: many(oneTimeTokens),
  sessions: many(sessions),
  apiKeys: many(apiKeys),
}))

export const boardsRelations = relations(boards, ({ one }) => ({
  author: one(users, { fields: [boards.user_id], references: [users.id] }),
}))

export const tokenBlocklistRelations = relations(tokenBlocklist, ({ one }) => ({
  user: one(users, { fields: [tokenBlocklist.user_id], references: [users.id] }),
}))

export const oneTimeTokensRelations = relations(oneTimeTokens, ({ one }) => ({
  user: one(users, { fields: [oneTimeTokens.user_id], references: [users.id] }),
}))

export const sessionsRelations = relations(sessions, ({ one }) => ({
  user: one(users, { fields: [sessions.user_id], references: [users.id] }),
}))

export const apiKeysRelations = relations(apiKeys, ({ one }) => ({
  user: one(users, { fields: [apiKeys.user_id], references: [users.id] }),
}))
