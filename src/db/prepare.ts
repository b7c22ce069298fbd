import { fileURLToPath } from 'node:url'
import { createConnection, type Connection } from 'mysql2/promise'
import { drizzle } from 'drizzle-orm/mysql2'
import { migrate } from 'drizzle-orm/mysql2/migrator'
import { describeDatabase, type Config } from '../config.js'
import { connectionOptions } from './pool.js'

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url))

export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError'
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Connects to the server (not the database, which may not exist yet), retrying until `waitMs`. */
async function connectToServer(config: Config, waitMs: number): Promise<Connection> {
  const { host, port } = describeDatabase(config)
  const url = new URL(config.DATABASE_URL)
  url.pathname = '/'
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      return await createConnection({ ...connectionOptions(config), uri: url.toString(), multipleStatements: false })
    } catch (error) {
      const code = (error as { code?: string }).code
      // A wrong password will not fix itself: no point retrying.
      if (code === 'ER_ACCESS_DENIED_ERROR' || Date.now() >= deadline) {
        const reason = code === 'ER_ACCESS_DENIED_ERROR' ? 'access denied' : (code ?? (error as Error).message)
        throw new DatabaseUnreachableError(`cannot reach MySQL/MariaDB at ${host}:${port} (${reason})`)
      }
      await sleep(250)
    }
  }
}

/**
 * Creates the database if it does not exist and applies the committed migrations.
 * A named lock serialises instances that start together, since drizzle's migrate() has none.
 */
export async function prepareDatabase(config: Config, { waitMs = 5000 } = {}): Promise<void> {
  const { database } = describeDatabase(config)
  const connection = await connectToServer(config, waitMs)
  try {
    const quoted = connection.escapeId(database)
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
    await connection.changeUser({ database })
    await connection.query('SELECT GET_LOCK(?, 60)', [`boardkit_migrate_${database}`])
    try {
      await migrate(drizzle(connection), { migrationsFolder: MIGRATIONS_FOLDER })
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [`boardkit_migrate_${database}`])
    }
  } finally {
    await connection.end()
  }
}
