import type { Pool } from 'mysql2/promise'
import type { Database } from '../db/database.js'
import { createBoardsRepository } from './boards.js'
import { createLoginFailuresRepository } from './login-failures.js'
import { createOneTimeTokensRepository } from './one-time-tokens.js'
import { createSessionsRepository } from './sessions.js'
import { createSigningKeysRepository } from './signing-keys.js'
import { createTokensRepository } from './tokens.js'
import { createUsersRepository } from './users.js'

/** `pool` is for the few batched statements that drizzle cannot express (see db/batch.ts). */
export function createRepositories (db: Database, pool: Pool) {
  return {
    users: createUsersRepository(db),
    boards: createBoardsRepository(db, pool),
    tokens: createTokensRepository(db, pool),
    loginFailures: createLoginFailuresRepository(db),
    oneTimeTokens: createOneTimeTokensRepository(db),
    sessions: createSessionsRepository(db),
    signingKeys: createSigningKeysRepository(db),
  }
}

export type Repositories = ReturnType<typeof createRepositories>
