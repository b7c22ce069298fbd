import { createPool, type Pool, type PoolOptions } from 'mysql2/promise'
import type { Config } from '../config.js'

/** Connection options shared by the request pool and the start-up connection. */
export function connectionOptions(config: Config): PoolOptions {
  return {
    uri: config.DATABASE_URL,
    // Fail fast when the server is unreachable: a request should get its 503 within about a
    // second, not hang for mysql2's 10 s default.
    connectTimeout: config.DB_CONNECT_TIMEOUT,
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
    supportBigNumbers: true,
  }
}

export function createDatabasePool(config: Config): Pool {
  return createPool({
    ...connectionOptions(config),
    connectionLimit: config.DB_POOL_SIZE,
    maxIdle: config.DB_POOL_SIZE,
    enableKeepAlive: true,
  })
}
