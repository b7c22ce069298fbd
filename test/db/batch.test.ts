import t from 'tap'
import { createBatchLoader, statementsBySize } from '../../src/db/batch.js'

// The batch loader behind the token check and board reads: calls made together become one
// query, each caller gets the value for its own key, and a failed query fails only its batch.

/** A loader over `values` that records the keys of each query. */
function recordingLoader (options: { maxBatchSize?: number, fail?: (keys: readonly number[]) => boolean } = {}) {
  const queries: number[][] = []
  const load = createBatchLoader(async (keys: readonly number[]) => {
    queries.push([...keys])
    if (options.fail?.(keys)) throw new Error(`query of ${keys.join(',')} failed`)
    return keys.map((key) => key % 2 === 0 ? `value ${key}` : null)
  }, { maxBatchSize: options.maxBatchSize ?? 50 })
  return { load, queries }
}

t.test('calls made in one turn of the event loop share one query', async (t) => {
  const { load, queries } = recordingLoader()
  const answers = await Promise.all([2, 3, 4, 6].map(load))
  t.same(answers, ['value 2', null, 'value 4', 'value 6'], 'each caller gets the value of its own key, null included')
  t.same(queries, [[2, 3, 4, 6]], 'one query')
})

t.test('calls in later turns make later queries', async (t) => {
  const { load, queries } = recordingLoader()
  t.equal(await load(2), 'value 2')
  t.equal(await load(4), 'value 4')
  t.same(queries, [[2], [4]])
})

t.test('the same key asked twice is queried once and answered twice', async (t) => {
  const { load, queries } = recordingLoader()
  t.same(await Promise.all([8, 8, 10, 8].map(load)), ['value 8', 'value 8', 'value 10', 'value 8'])
  t.same(queries, [[8, 10]])
})

t.test('more keys than maxBatchSize are split into several queries', async (t) => {
  const { load, queries } = recordingLoader({ maxBatchSize: 3 })
  const keys = [2, 4, 6, 8, 10, 12, 14]
  t.same(await Promise.all(keys.map(load)), keys.map((key) => `value ${key}`))
  t.same(queries, [[2, 4, 6], [8, 10, 12], [14]])
})

t.test('a failed query rejects the calls of its batch only, with its error', async (t) => {
  const { load } = recordingLoader({ maxBatchSize: 2, fail: (keys) => keys.includes(4) })
  const results = await Promise.allSettled([2, 4, 6, 8].map(load))
  t.same(results.map((result) => result.status), ['rejected', 'rejected', 'fulfilled', 'fulfilled'])
  t.match((results[0] as PromiseRejectedResult).reason, { message: 'query of 2,4 failed' })
  t.equal(await load(2), 'value 2', 'the next call queries again')
})

t.test('statements exist for powers of two and the maximum; a batch takes the smallest that fits', async (t) => {
  const built: number[] = []
  const statementFor = statementsBySize(50, (size) => { built.push(size); return `statement of ${size}` })
  t.same(built, [1, 2, 4, 8, 16, 32, 50], 'seven texts, not fifty')
  t.same([1, 2, 3, 5, 8, 9, 17, 33, 50].map((count) => statementFor(count).size), [1, 2, 4, 8, 8, 16, 32, 50, 50])
  t.equal(statementFor(3).sql, 'statement of 4', 'the text of the size it returns')
  const pageSizes: number[] = []
  statementsBySize(20, (size) => { pageSizes.push(size); return '' })
  t.same(pageSizes, [1, 2, 4, 8, 16, 20], 'a maximum that is no power of two has a text of its own')
})
