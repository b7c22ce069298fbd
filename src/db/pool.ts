import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise'
import { databaseUrls, type Config } from '../config.js'
import { createFailoverPool, enableCausalReads } from './cluster.js'

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
type Run = (...args: unknown[]) => Promise<unknown>
interface CallbackConnection { query (sql: string, callback: (error: Error | null) => void): void }

/**
 * mysql2 has no query timeout for a whole pool, and drizzle passes none: a query sent just before
 * the network to the database is cut would wait for TCP to give up (minutes). This adds
 * `timeout` to every query; mysql2 then fails it with PROTOCOL_SEQUENCE_TIMEOUT and drops the
 * connection.
 */
function withQueryTimeout<T extends QueryTarget> (target: T, timeout: number): T {
  const addTimeout = (options: unknown) =>
    typeof options === 'string' ? { sql: options, timeout } : { timeout, ...(options as object) }
  return new Proxy(target, {
    get (object, property) {
      const value = Reflect.get(object, property)
      if (property === 'query' || property === 'execute') {
        return (options: unknown, ...rest: unknown[]) => (value as Run).call(object, addTimeout(options), ...rest)
      }
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}

/**
 * mysql2 also queues requests for a connection without a deadline. While the database is away,
 * each queued request would wait for the ones before it to fail their own connect timeout, so
 * the 50th of 50 concurrent requests got its 503 after five seconds. A request now gives up
 * after `deadline`; a connection that arrives later goes straight back to the pool, unused, so
 * a request answered 503 never writes anything afterwards.
 */
function acquire (pool: Pool, deadline: number): Promise<PoolConnection> {
  return new Promise((resolve, reject) => {
    let late = false
    const timer = setTimeout(() => {
      late = true
      reject(Object.assign(new Error('timed out waiting for a database connection'), { code: 'POOL_ACQUIRE_TIMEOUT' }))
    }, deadline)
    pool.getConnection().then((connection) => {
      clearTimeout(timer)
      if (late) connection.release()
      else resolve(connection)
    }, (error: unknown) => {
      clearTimeout(timer)
      // mysql2 fails the requests still queued when the pool closes (shutdown) with a bare
      // "Pool is closed." and no code: give it one, so it is a 503 like any other outage.
      if ((error as Error).message === 'Pool is closed.') Object.assign(error as Error, { code: 'POOL_CLOSED' })
      if (!late) reject(error)
    })
  })
}

export function createDatabasePool (config: Config): Pool {
  const options: PoolOptions = {
    ...connectionOptions(config),
    connectionLimit: config.DB_POOL_SIZE,
    maxIdle: config.DB_POOL_SIZE,
    enableKeepAlive: true,
    // mysql2 otherwise captures a stack trace on every query (8% of the CPU time of a read in
    // npm run bench) to decorate errors we log but never show.
    trace: false,
  }
  // Several hosts (a Galera cluster, API.md §11): one pool each, with failover (db/cluster.ts).
  const urls = databaseUrls(config.DATABASE_URL)
  const pool = urls.length === 1 ? createPool(options) : createFailoverPool(urls, (uri) => createPool({ ...options, uri }))
  enableCausalReads(pool)
  // Dates are read and written as UTC (timezone: 'Z' above); the server's CURRENT_TIMESTAMP
  // defaults must be UTC too, or the refresh reuse window would be off by the server's offset.
  // The event hands out the callback-style connection, whatever the promise typings say.
  pool.on('connection', (connection) => {
    (connection as unknown as CallbackConnection).query("SET time_zone = '+00:00'", () => {})
  })

  const checkout = async () => withQueryTimeout(await acquire(pool, config.DB_CONNECT_TIMEOUT), config.DB_QUERY_TIMEOUT)
  // pool.query()/execute() and transactions (getConnection) all go through checkout().
  const runOnConnection = (method: 'query' | 'execute') => async (...args: unknown[]) => {
    const connection = await checkout()
    try {
      return await (connection[method] as Run)(...args)
    } finally {
      connection.release()
    }
  }
  return new Proxy(pool, {
    get (object, property) {
      if (property === 'query' || property === 'execute') return runOnConnection(property)
      if (property === 'getConnection') return checkout
      const value = Reflect.get(object, property)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}
