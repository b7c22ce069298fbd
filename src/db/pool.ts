import { createPool, type Pool, type PoolOptions } from 'mysql2/promise'
import type { Config } from '../config.js'

/** Connection options shared by the request pool and the start-up connection. */
export function connectionOptions (config: Config): PoolOptions {
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

type QueryTarget = Pick<Pool, 'query' | 'execute'>
interface CallbackConnection { query (sql: string, callback: (error: Error | null) => void): void }

/**
 * mysql2 has no pool-wide query timeout, and drizzle passes none. Without one, a query sent
 * just before the network to the database is cut waits for TCP to give up (minutes). This
 * adds `timeout` to every query of the pool and of the connections it hands out (transactions);
 * mysql2 then fails the query with PROTOCOL_SEQUENCE_TIMEOUT and drops the connection.
 */
function withQueryTimeout<T extends QueryTarget> (target: T, timeout: number): T {
  const addTimeout = (options: unknown) =>
    typeof options === 'string' ? { sql: options, timeout } : { timeout, ...(options as object) }
  return new Proxy(target, {
    get (object, property, receiver) {
      if (property === 'query' || property === 'execute') {
        return (options: unknown, ...rest: unknown[]) =>
          (object[property] as (...args: unknown[]) => unknown).call(object, addTimeout(options), ...rest)
      }
      if (property === 'getConnection') {
        return async () => withQueryTimeout(await (object as unknown as Pool).getConnection(), timeout)
      }
      const value = Reflect.get(object, property, receiver)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}

export function createDatabasePool (config: Config): Pool {
  const pool = createPool({
    ...connectionOptions(config),
    connectionLimit: config.DB_POOL_SIZE,
    maxIdle: config.DB_POOL_SIZE,
    enableKeepAlive: true,
  })
  // Dates are read and written as UTC (timezone: 'Z' above); the server's CURRENT_TIMESTAMP
  // defaults must be UTC too, or the refresh reuse window would be off by the server's offset.
  // The event hands out the callback-style connection, whatever the promise typings say.
  pool.on('connection', (connection) => {
    (connection as unknown as CallbackConnection).query("SET time_zone = '+00:00'", () => {})
  })
  return withQueryTimeout(pool, config.DB_QUERY_TIMEOUT)
}
