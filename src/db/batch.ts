/** The most keys one statement carries, unless a loader sets its own maximum. */
export const MAX_BATCH_SIZE = 50

/**
 * The statement text for each batch size from 1 to `max` (index 0 is unused), built once: a
 * text per size, so each is prepared once per connection and reused.
 */
export function statementsBySize (max: number, build: (size: number) => string): readonly string[] {
  return Array.from({ length: max + 1 }, (_, size) => size === 0 ? '' : build(size))
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
