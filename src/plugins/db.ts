import fp from 'fastify-plugin'
import type { Pool } from 'mysql2/promise'
import { createDatabasePool } from '../db/pool.js'
import { createDatabase, type Database } from '../db/database.js'
import { createRepositories, type Repositories } from '../repositories/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    pool: Pool
    db: Database
    repos: Repositories
  }
}

/** The mysql2 pool, drizzle over it, and the repositories (all SQL lives in src/repositories). */
export default fp(async (app) => {
  const pool = createDatabasePool(app.config, app.metrics.pool)
  // mysql2 emits 'error' on idle connections that the server dropped; without a listener
  // that would be an uncaught exception. The pool replaces the connection by itself.
  pool.on('connection', (connection) => connection.on('error', (error) => app.log.warn({ err: error }, 'database connection error')))
  const db = createDatabase(pool)
  app.decorate('pool', pool).decorate('db', db).decorate('repos', createRepositories(db, pool, { webhooks: Boolean(app.config.WEBHOOK_URL) }))
  app.addHook('onClose', async () => {
    // Nothing is left to do about a pool that fails to close (e.g. it was already ended): the
    // process is on its way out, and the shutdown must still complete.
    await pool.end().catch((error: unknown) => app.log.warn({ err: error }, 'closing the database pool'))
  })
}, { name: 'db', dependencies: ['config', 'metrics'] })
