/** The most keys one statement carries, unless a loader sets its own maximum. */
export const MAX_BATCH_SIZE = 50

/** A batch's statement: its text, and how many keys it takes (the batch's size or more). */
export interface SizedStatement {
  sql: string
  size: number
}

/**
 * The statements of a batched lookup: one text for each power of two below `max`, and `max`. A
 * batch runs the smallest that fits it, padded with keys that match nothing. Each text is
 * prepared once per connection, and every prepared statement costs memory on both sides: mysql2
 * keeps its parameter and column definitions, MariaDB its plan, and MariaDB refuses more than
 * max_prepared_stmt_count (16 382 by default) server-wide. A text per size, as before, made
 * up to 140 batch statements a connection (26 now): 2 800 for one instance at DB_POOL_SIZE=20,
 * past the limit at six such instances, and some 15 000 column definitions in the API's heap
 * after the read scenarios of npm run bench.
 */
export function statementsBySize (max: number, build: (size: number) => string): (count: number) => SizedStatement {
  const statements: SizedStatement[] = []
  for (let size = 1; size < max; size *= 2) statements.push({ sql: build(size), size })
  statements.push({ sql: build(max), size: max })
  return (count) => statements.find((statement) => statement.size >= count)!
}

/**
 * A lookup that collects the calls made during one turn of the event loop and answers them all
 * with one query.
 *
 * Under load, many requests need the same lookup at the same moment: the token check runs on
 * every authenticated request. Sent one by one, each costs a socket write and a read here and a
 * statement in the database; in `npm run bench` the socket writes alone were a third of the
 * API's CPU time. Batched, fifty concurrent requests cost a handful of round trips. An idle
 * server pays nothing for this but one setImmediate.
 *
 * `loadMany` gets distinct keys (at most `maxBatchSize`) and returns their values in the same
 * order. If it fails, every call of that batch fails with the same error.
 */
export function createBatchLoader<K, V> (
  loadMany: (keys: readonly K[]) => Promise<readonly V[]>,
  { maxBatchSize = MAX_BATCH_SIZE, keyOf = (key: K): unknown => key }: { maxBatchSize?: number, keyOf?: (key: K) => unknown } = {},
): (key: K) => Promise<V> {
  interface Waiter { key: K, resolve: (value: V) => void, reject: (error: unknown) => void }
  let waiting: Waiter[] = []

  function dispatch (batch: Waiter[]) {
    // Callers asking for the same key share its answer.
    const distinct = new Map<unknown, Waiter[]>()
    for (const waiter of batch) {
      const id = keyOf(waiter.key)
      const sharing = distinct.get(id)
      if (sharing) sharing.push(waiter)
      else distinct.set(id, [waiter])
    }
    const groups = [...distinct.values()]
    for (let start = 0; start < groups.length; start += maxBatchSize) {
      const chunk = groups.slice(start, start + maxBatchSize)
      loadMany(chunk.map((group) => group[0]!.key)).then((values) => {
        chunk.forEach((group, i) => { for (const waiter of group) waiter.resolve(values[i]!) })
      }, (error: unknown) => {
        for (const group of chunk) for (const waiter of group) waiter.reject(error)
      })
    }
  }

  return (key) => new Promise<V>((resolve, reject) => {
    waiting.push({ key, resolve, reject })
    // setImmediate runs after the poll phase: every request whose bytes arrived in this turn of
    // the loop has asked by then.
    if (waiting.length === 1) {
      setImmediate(() => {
        const batch = waiting
        waiting = []
        dispatch(batch)
      })
    }
  })
}
