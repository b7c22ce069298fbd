import type { Database } from '../db/database.js'
import { createBoardsRepository } from './boards.js'
import { createTokensRepository } from './tokens.js'
import { createUsersRepository } from './users.js'

export function createRepositories (db: Database) {
  return {
    users: createUsersRepository(db),
    boards: createBoardsRepository(db),
    tokens: createTokensRepository(db),
  }
}

export type Repositories = ReturnType<typeof createRepositories>
