import type { Database } from '../db/database.js'
import { createBoardsRepository } from './boards.js'
import { createLoginFailuresRepository } from './login-failures.js'
import { createTokensRepository } from './tokens.js'
import { createUsersRepository } from './users.js'

export function createRepositories (db: Database) {
  return {
    users: createUsersRepository(db),
    boards: createBoardsRepository(db),
    tokens: createTokensRepository(db),
    loginFailures: createLoginFailuresRepository(db),
  }
}

export type Repositories = ReturnType<typeof createRepositories>
