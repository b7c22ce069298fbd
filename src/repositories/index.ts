import type { Pool } from 'mysql2/promise'
import type { Database } from '../db/database.js'
import { createApiKeysRepository } from './api-keys.js'
import { createBoardsRepository } from './boards.js'
import { createEventLog, type EventLogOptions } from './events.js'
import { createIdentitiesRepository } from './identities.js'
import { createLoginFailuresRepository } from './login-failures.js'
import { createMfaRepository } from './mfa.js'
import { createOneTimeTokensRepository } from './one-time-tokens.js'
import { createOutboxRepository } from './outbox.js'
import { createPasskeysRepository } from './passkeys.js'
import { createSessionsRepository } from './sessions.js'
import { createSigningKeysRepository } from './signing-keys.js'
import { createTokensRepository } from './tokens.js'
import { createUsersRepository } from './users.js'

/**
 * `pool` is for the few batched statements that drizzle cannot express (see db/batch.ts). The
 * repositories that make security-relevant changes write their events (and mails) in the same
 * transaction, through the event log and the outbox (API.md §15).
 */
export function createRepositories (db: Database, pool: Pool, options: EventLogOptions = { webhooks: false }) {
  const events = createEventLog(db, options)
  const outbox = createOutboxRepository(db)
  const effects = { record: events.record, enqueueMail: outbox.enqueueMail }
  return {
    users: createUsersRepository(db, effects),
    boards: createBoardsRepository(db, pool),
    tokens: createTokensRepository(db, pool),
    loginFailures: createLoginFailuresRepository(db),
    oneTimeTokens: createOneTimeTokensRepository(db, effects),
    sessions: createSessionsRepository(db, effects),
    mfa: createMfaRepository(db, effects),
    signingKeys: createSigningKeysRepository(db, effects),
    apiKeys: createApiKeysRepository(db, effects),
    identities: createIdentitiesRepository(db, effects),
    passkeys: createPasskeysRepository(db, effects),
    events,
    outbox,
  }
}

export type Repositories = ReturnType<typeof createRepositories>
