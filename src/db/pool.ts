import { performance } from 'node:perf_hooks'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise'
import { databaseUrls, type Config } from '../config.js'
import { createFailoverPool, enableCausalReads, statementText } from './cluster.js'

/** What a statement does, by its first word: a label with a handful of values, never the text. */
export type StatementKind = 'select' | 'insert' | 'update' | 'delete' | 'transaction' | 'other'

const KIND_OF_KEYWORD: Record<string, StatementKind> = {
  select: 'select', insert: 'insert', replace: 'insert', update: 'update', delete: 'delete',
  begin: 'transaction', start: 'transaction', commit: 'transaction', rollback: 'transaction', savepoint: 'transaction',
}

/** The statement's first keyword, lower-cased ('select', 'begin', 'set', …). */
const firstKeyword = (text: string) => /^\s*\(?\s*([a-z]+)/i.exec(text)?.[1]?.toLowerCase() ?? ''

export function statementKind (text: string): StatementKind {
  return KIND_OF_KEYWORD[firstKeyword(text)] ?? 'other'
}

/**
 * What the pool reports while it works, for the metrics (src/plugins/metrics.ts). Kept to an
 * interface so this layer imports nothing from above it; without an observer nothing is counted.
 */
export interface PoolObserver {
  /** A request starts waiting for a connection; the function returned is called once when it ends. */
  waitStarted (): (outcome: 'acquired' | 'timeout' | 'failed') => void
  /** A connection was handed to a request, and later given back (released or destroyed). */
  checkedOut (): void
  checkedIn (): void
  statement (kind: StatementKind, seconds: number): void
}

// @opentelemetry/api only: a no-op until src/telemetry.ts registers the SDK (API.md §18).
const tracer = trace.getTracer('boardkit')

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

type Run = (...args: unknown[]) => Promise<unknown>
interface CallbackConnection { query (sql: string, callback: (error: Error | null) => void): void }

/** A pooled connection idle this long is pinged before it is handed out again. */
const PING_AFTER_IDLE_MS = 10_000

/**
 * Runs `work` on `connection`, failing after `ms` if the database has not answered.
 *
 * mysql2 implements `timeout` only for query(): its Execute command ignores it, and the token
 * check and every prepared statement run through execute(). A statement sent on a connection
 * that then goes silent (a network partition, a frozen host) would wait for TCP to give up,
 * minutes to hours, holding its pool connection. So the deadline is ours, for every command.
 * On expiry the connection is destroyed, never released: it is silent or, if the answer is
 * merely late, out of step with the protocol; either way the next request must not get it.
 * A destroyed connection leaves the pool, so its later release() is a no-op.
 */
function withDeadline<T> (connection: PoolConnection, work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.destroy()
      // mysql2's own code and flag for a command that timed out, so it maps to 503 like one.
      reject(Object.assign(new Error(`the database did not answer ${what} within ${ms} ms`), { code: 'PROTOCOL_SEQUENCE_TIMEOUT', fatal: true }))
    }, ms)
    work.then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, (error: unknown) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/**
 * One statement, timed for the metrics and in a span of its own (a child of the request's): the
 * statement's text is parameterised (drizzle and our batches bind every value), so the span can
 * carry it without a value in it.
 */
async function runStatement (connection: PoolConnection, method: 'query' | 'execute', run: Run, args: unknown[], timeout: number, observer: PoolObserver | undefined) {
  const text = statementText(args[0])
  const operation = firstKeyword(text).toUpperCase() || 'SQL'
  const kind = statementKind(text)
  // Named by its operation, as OpenTelemetry's database conventions name a span without a table.
  // Only within a trace: a statement of no request (the outbox worker's poll each second, the
  // purge, the key ring's check) would otherwise be a trace of one span, many a minute.
  const span = trace.getActiveSpan() && tracer.startSpan(operation, {
    kind: SpanKind.CLIENT,
    attributes: { 'db.system.name': 'mysql', 'db.operation.name': operation, 'db.query.text': text.slice(0, 2048) },
  })
  const started = performance.now()
  try {
    return await withDeadline(connection, run.apply(connection, args), timeout, `a ${method}`)
  } catch (error) {
    span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as { code?: string }).code ?? 'error' })
    throw error
  } finally {
    observer?.statement(kind, (performance.now() - started) / 1000)
    span?.end()
  }
}

/**
 * Every query() and execute() on this connection fails after `timeout` (see withDeadline), and
 * is reported to `observer`, as is the connection's return to the pool (once, whichever of
 * release() and destroy() comes first).
 */
function withQueryTimeout (connection: PoolConnection, timeout: number, observer: PoolObserver | undefined): PoolConnection {
  let returned = false
  return new Proxy(connection, {
    get (object, property) {
      const value = Reflect.get(object, property)
      if (property === 'query' || property === 'execute') {
        return (...args: unknown[]) => runStatement(object, property, value as Run, args, timeout, observer)
      }
      if (observer && (property === 'release' || property === 'destroy')) {
        return () => {
          if (!returned) observer.checkedIn()
          returned = true
          return (value as () => void).call(object)
        }
      }
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}

const timeoutError = (message: string) => Object.assign(new Error(message), { code: 'POOL_ACQUIRE_TIMEOUT' })

/**
 * mysql2 also queues requests for a connection without a deadline. While the database is away,
 * each queued request would wait for the ones before it to fail their own connect timeout, so
 * the 50th of 50 concurrent requests got its 503 after five seconds. A request now gives up
 * after `deadline`; a connection that arrives later goes straight back to the pool, unused, so
 * a request answered 503 never writes anything afterwards.
 */
function acquire (pool: Pool, deadline: number, observer: PoolObserver | undefined): Promise<PoolConnection> {
  const waited = observer?.waitStarted()
  if (deadline <= 0) {
    waited?.('timeout')
    return Promise.reject(timeoutError('timed out waiting for a database connection'))
  }
  return new Promise((resolve, reject) => {
    let late = false
    const timer = setTimeout(() => {
      late = true
      waited?.('timeout')
      reject(timeoutError('timed out waiting for a database connection'))
    }, deadline)
    pool.getConnection().then((connection) => {
      clearTimeout(timer)
      if (late) connection.release()
      else {
        waited?.('acquired')
        resolve(connection)
      }
    }, (error: unknown) => {
      clearTimeout(timer)
      // mysql2 fails the requests still queued when the pool closes (shutdown) with a bare
      // "Pool is closed." and no code: give it one, so it is a 503 like any other outage.
      if ((error as Error).message === 'Pool is closed.') Object.assign(error as Error, { code: 'POOL_CLOSED' })
      if (!late) {
        waited?.('failed')
        reject(error)
      }
    })
  })
}

/**
 * A connection from the pool within `budget` ms, health-checked. One that sat idle for a while
 * may have died silently (a NAT or firewall forgot it, the host froze): it is pinged first, and
 * if it does not answer within half of what is left of the budget it is destroyed and another
 * is taken in the other half, so a dead connection costs its request a ping, not a failed
 * statement. Busy connections are never idle that long, so the ping costs nothing under load.
 */
async function checkout (pool: Pool, budget: number, observer: PoolObserver | undefined): Promise<PoolConnection> {
  const giveUpAt = Date.now() + budget
  for (;;) {
    const connection = await acquire(pool, giveUpAt - Date.now(), observer)
    const idleSince = (connection as unknown as { connection: { lastActiveTime?: number } }).connection.lastActiveTime
    if (idleSince === undefined || Date.now() - idleSince < PING_AFTER_IDLE_MS) return connection
    try {
      await withDeadline(connection, connection.ping(), Math.max(Math.floor((giveUpAt - Date.now()) / 2), 1), 'a ping')
      return connection
    } catch {
      // withDeadline destroyed it if it timed out; a ping that failed otherwise broke it.
      connection.destroy()
    }
  }
}

export function createDatabasePool (config: Config, observer?: PoolObserver): Pool {
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

  // A request waits at most DB_CONNECT_TIMEOUT for a connection and DB_QUERY_TIMEOUT for each
  // statement. pool.query()/execute() and transactions (getConnection) all come through here.
  const checkoutWithTimeout = async () => {
    const connection = await checkout(pool, config.DB_CONNECT_TIMEOUT, observer)
    observer?.checkedOut()
    return withQueryTimeout(connection, config.DB_QUERY_TIMEOUT, observer)
  }
  const runOnConnection = (method: 'query' | 'execute') => async (...args: unknown[]) => {
    const connection = await checkoutWithTimeout()
    try {
      return await (connection[method] as Run)(...args)
    } finally {
      connection.release()
    }
  }
  return new Proxy(pool, {
    get (object, property) {
      if (property === 'query' || property === 'execute') return runOnConnection(property)
      if (property === 'getConnection') return checkoutWithTimeout
      const value = Reflect.get(object, property)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}
