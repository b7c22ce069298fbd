import { fileURLToPath } from 'node:url'
import { createConnection, type Connection } from 'mysql2/promise'
import { drizzle } from 'drizzle-orm/mysql2'
import { migrate } from 'drizzle-orm/mysql2/migrator'
import { randomUUID } from 'node:crypto'
import { databaseUrls, describeDatabase, type Config } from '../config.js'
import { CAUSAL_READS_STATEMENT } from './cluster.js'
import { isDuplicateKey } from './errors.js'
import { connectionOptions } from './pool.js'

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url))

export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError'
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Connects to the server (not the database, which may not exist yet), retrying until `waitMs`.
 * With several hosts (a cluster), each is tried in turn.
 */
async function connectToServer(config: Config, waitMs: number): Promise<Connection> {
  const { host, port } = describeDatabase(config)
  const urls = databaseUrls(config.DATABASE_URL).map((text) => {
    const url = new URL(text)
    url.pathname = '/'
    return url.toString()
  })
  const deadline = Date.now() + waitMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await createConnection({ ...connectionOptions(config), uri: urls[attempt % urls.length], multipleStatements: false })
    } catch (error) {
      const code = (error as { code?: string }).code
      // A wrong password will not fix itself: no point retrying.
      if (code === 'ER_ACCESS_DENIED_ERROR' || Date.now() >= deadline) {
        const reason = code === 'ER_ACCESS_DENIED_ERROR' ? 'access denied' : (code ?? (error as Error).message)
        const where = urls.length > 1 ? `any of ${urls.length} hosts (first ${host}:${port})` : `${host}:${port}`
        throw new DatabaseUnreachableError(`cannot reach MySQL/MariaDB at ${where} (${reason})`)
      }
      if ((attempt + 1) % urls.length === 0) await sleep(250)
    }
  }
}

/** A lock older than this was left by an instance that died while migrating. */
const STALE_LOCK_MS = 120_000

/**
 * The migration lock is a row, not GET_LOCK(): named locks are local to one server, so on a
 * Galera cluster two instances starting on different nodes would both take "the" lock and run
 * the same migrations at once. A row with a primary key is replicated, and of two nodes inserting
 * it concurrently only one commits (the other gets a duplicate key, or 1213 from certification).
 */
async function withMigrationLock(connection: Connection, work: () => Promise<void>): Promise<void> {
  await connection.query(
    'CREATE TABLE IF NOT EXISTS boardkit_migration_lock (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, holder CHAR(36) NOT NULL, taken_at DATETIME(3) NOT NULL)')
  const holder = randomUUID()
  const deadline = Date.now() + STALE_LOCK_MS
  for (;;) {
    try {
      await connection.query('INSERT INTO boardkit_migration_lock (id, holder, taken_at) VALUES (1, ?, UTC_TIMESTAMP(3))', [holder])
      break
    } catch (error) {
      const code = (error as { code?: string }).code
      if (!isDuplicateKey(error) && code !== 'ER_LOCK_DEADLOCK') throw error
      if (Date.now() > deadline) throw new Error('timed out waiting for another instance to finish migrating', { cause: error })
      // Taken: by a live instance (wait for it), or by one that died migrating (break it).
      // Primary-key lookup on id.
      await connection.query('DELETE FROM boardkit_migration_lock WHERE id = 1 AND taken_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND', [STALE_LOCK_MS / 1000])
      await sleep(200)
    }
  }
  try {
    await work()
  } finally {
    await connection.query('DELETE FROM boardkit_migration_lock WHERE id = 1 AND holder = ?', [holder])
  }
}

/**
 * Creates the database if it does not exist and applies the committed migrations, once however
 * many instances start together (drizzle's migrate() has no lock of its own).
 */
export async function prepareDatabase(config: Config, { waitMs = 5000 } = {}): Promise<void> {
  const { database } = describeDatabase(config)
  const connection = await connectToServer(config, waitMs)
  try {
    const quoted = connection.escapeId(database)
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
    await connection.changeUser({ database })
    // On a Galera node, see the lock row and the migrations table as the whole cluster has them
    // (after changeUser, which resets session variables).
    await connection.query(CAUSAL_READS_STATEMENT).catch(() => {})
    await withMigrationLock(connection, () => migrate(drizzle(connection), { migrationsFolder: MIGRATIONS_FOLDER }))
  } finally {
    await connection.end()
  }
}
