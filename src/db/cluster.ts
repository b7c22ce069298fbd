import type { Pool, PoolConnection } from 'mysql2/promise'
import { driverErrorCode, isDatabaseUnavailable } from './errors.js'

// What a database of several nodes (a MariaDB Galera cluster, API.md §11) needs from the pool,
// kept apart from pool.ts: failover between the hosts of DATABASE_URL, causal reads on Galera,
// and a retry of statements that lost a certification conflict.

/**
 * Galera applies the writesets of other nodes asynchronously: without a causality wait, a token
 * logged out through node A was still accepted through node B on the next request, and a board
 * created through A was 404 through B right after its 201 (issue 17). wsrep_sync_wait makes a
 * statement wait until this node has applied everything committed in the cluster before it
 * started: 1 = reads, 2 = UPDATE and DELETE, 4 = INSERT and REPLACE (whose FK and duplicate-key
 * checks read too). Every statement on our request path is a read of something a client may
 * have just written through another instance, or a write that depends on one, so it is set for
 * the whole session. `@@wsrep_on` is 0 on a plain server, which then keeps 0 (no wait); on a
 * server that has no such variable the statement fails and is ignored.
 */
export const CAUSAL_READS_STATEMENT = 'SET SESSION wsrep_sync_wait = IF(@@wsrep_on, 7, 0)'

interface CallbackConnection { query (sql: string, callback: (error: Error | null) => void): void }

/** Every new connection of `pool` waits for causality when its server is a Galera node. */
export function enableCausalReads (pool: Pool): void {
  // Queued on the connection before mysql2 hands it to anyone, so it runs before their first
  // statement. The event gives the callback-style connection, whatever the typings say.
  pool.on('connection', (connection) => {
    (connection as unknown as CallbackConnection).query(CAUSAL_READS_STATEMENT, () => {})
  })
}

/** How long a node that failed stays behind the others before it is tried first again. */
const NODE_DOWN_MS = 2000
/** Certification conflicts retried for one autocommit statement (Galera itself retries once). */
const CONFLICT_RETRIES = 2

/**
 * A node that cannot serve: the connection broke or timed out, or the server is a Galera node
 * that is not part of the primary component / not synced yet, which refuses every statement with
 * 1047 "WSREP has not yet prepared node for application use". A lock conflict says nothing about
 * the node and does not count.
 */
function isNodeFailure (error: unknown): boolean {
  const code = driverErrorCode(error)
  if (code === 'ER_UNKNOWN_COM_ERROR') return true
  if (code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT') return false
  return isDatabaseUnavailable(error)
}

/** ER_LOCK_DEADLOCK is also how Galera reports a transaction that lost certification at commit. */
export function isConflict (error: unknown): boolean {
  return driverErrorCode(error) === 'ER_LOCK_DEADLOCK'
}

interface Node {
  url: string
  pool: Pool
  /** Until then the node is tried after the others; 0: healthy. */
  downUntil: number
  /** Whether a connection of this node must show it is synced before it is used. */
  suspect: boolean
}

type Run = (...args: unknown[]) => Promise<unknown>

/** The SQL of a query()/execute() call's first argument (a string or `{ sql }`). */
export function statementText (options: unknown): string {
  return typeof options === 'string' ? options : String((options as { sql?: unknown } | null)?.sql ?? '')
}

/** Is this Galera node able to serve (or not a Galera node at all)? One status read, no table. */
async function isSynced (connection: PoolConnection): Promise<boolean> {
  const [rows] = await connection.query('SHOW GLOBAL STATUS LIKE \'wsrep_ready\'')
  const row = (rows as { Value?: string }[])[0]
  return row === undefined || row.Value === 'ON'
}

/**
 * One pool per host of DATABASE_URL, behind the interface of a single mysql2 pool (what pool.ts
 * wraps). A connection comes from the first host in the configured order that is not marked
 * down; a host whose connect or statement fails as a node failure is marked down for a moment,
 * so the next requests go to the next host while the one that met the failure gets its 503.
 * A host coming back must report itself synced before it is used again. mysql2's PoolCluster
 * was not enough: it fails over only on connect errors, never on a node that accepts
 * connections but refuses statements (a Galera node out of the primary component).
 */
export function createFailoverPool (urls: readonly string[], createOne: (url: string) => Pool): Pool {
  const nodes: Node[] = urls.map((url) => ({ url, pool: createOne(url), downUntil: 0, suspect: false }))

  const markDown = (node: Node) => {
    node.downUntil = Date.now() + NODE_DOWN_MS
    node.suspect = true
  }

  /** The connection, with node failures noted and lost certification conflicts retried. */
  const track = (node: Node, connection: PoolConnection): PoolConnection => {
    let inTransaction = false
    const run = (method: Run, target: PoolConnection) => async (options: unknown, ...rest: unknown[]) => {
      const text = statementText(options).trimStart().slice(0, 20).toLowerCase()
      const begins = text.startsWith('begin') || text.startsWith('start transaction')
      const ends = text.startsWith('commit') || text.startsWith('rollback')
      // An autocommit statement that lost certification was rolled back whole: running it again
      // is safe (a lost INSERT then meets the winner's row as a duplicate key). Nothing of a
      // transaction is retried, its COMMIT least of all: a COMMIT that lost certification has
      // rolled the transaction back, and a second COMMIT would "succeed" on nothing (it made two
      // concurrent refreshes of one token both win, test-cluster).
      const retryable = !inTransaction && !begins && !ends
      if (begins) inTransaction = true
      if (ends) inTransaction = false
      for (let attempt = 0; ; attempt++) {
        try {
          return await method.call(target, options, ...rest)
        } catch (error) {
          if (isNodeFailure(error)) markDown(node)
          if (!isConflict(error) || !retryable || attempt >= CONFLICT_RETRIES) throw error
        }
      }
    }
    return new Proxy(connection, {
      get (object, property) {
        const value = Reflect.get(object, property)
        if (property === 'query' || property === 'execute') return run(value as Run, object)
        return typeof value === 'function' ? value.bind(object) : value
      },
    })
  }

  async function getConnection (): Promise<PoolConnection> {
    const now = Date.now()
    // Healthy hosts in the configured order, then the ones marked down: with every host down,
    // each is still tried in turn rather than giving up without a try.
    const order = [...nodes.filter((node) => node.downUntil <= now), ...nodes.filter((node) => node.downUntil > now)]
    let lastError: unknown
    for (const node of order) {
      let connection: PoolConnection | undefined
      try {
        connection = await node.pool.getConnection()
        if (node.suspect && !(await isSynced(connection))) {
          connection.release()
          markDown(node)
          lastError = Object.assign(new Error(`database node ${new URL(node.url).host} is not synced`), { code: 'ER_UNKNOWN_COM_ERROR' })
          continue
        }
        node.downUntil = 0
        node.suspect = false
        return track(node, connection)
      } catch (error) {
        connection?.destroy()
        markDown(node)
        lastError = error
      }
    }
    throw lastError
  }

  const facade = {
    getConnection,
    query: async (...args: unknown[]) => {
      const connection = await getConnection()
      try { return await (connection.query as Run)(...args) } finally { connection.release() }
    },
    execute: async (...args: unknown[]) => {
      const connection = await getConnection()
      try { return await (connection.execute as Run)(...args) } finally { connection.release() }
    },
    on (event: string, listener: (...args: unknown[]) => void) {
      for (const node of nodes) node.pool.on(event as 'connection', listener)
      return facade
    },
    async end () {
      await Promise.all(nodes.map((node) => node.pool.end()))
    },
  }
  return facade as unknown as Pool
}
