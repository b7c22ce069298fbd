import type { Database } from '../db/database.js'
import { createTokensRepository } from './tokens.js'
import { createUsersRepository } from './users.js'

export function createRepositories (db: Database) {
  return {
    users: createUsersRepository(db),
    tokens: createTokensRepository(db),
  }
}

export type Repositories = ReturnType<typeof createRepositories>
