import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, createTestDatabase } from '../helper.js'
import { startTcpProxy } from './tcp-proxy.js'

// API.md §11: with REDIS_URL the per-IP limits are counted in Redis, shared by every instance;
// Redis unreachable → requests are served (fail open) and counting resumes by itself. Runs
// against the real Redis at 127.0.0.1:6379, each test under a key prefix of its own. To take
// Redis away without stopping the server others use, a TCP proxy sits between the app and it.

const REDIS_PORT = 6379
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A key prefix of this test's own; its keys are deleted when the test ends. */
function uniquePrefix (t: Test): string {
  const prefix = `boardkit:test:${process.pid}:${randomBytes(4).toString('hex')}:`
  t.teardown(async () => {
    const redis = new Redis(REDIS_PORT, '127.0.0.1')
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  })
  return prefix
}

const badLogin = (app: App) =>
  app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password: 'wrong password' } })

t.test('two instances on one database share one per-IP login limit through Redis', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const settings = { DATABASE_URL, REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}`, REDIS_KEY_PREFIX: uniquePrefix(t), RATE_LIMIT_AUTH: '10' }
  const first = await build(t, settings)
  const second = await build(t, settings)

  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await badLogin(i % 2 === 0 ? first : second)).statusCode)
  t.same(statuses, Array(10).fill(401), 'the first 10 logins from one IP, spread over both instances, are answered')
  const eleventh = await badLogin(first)
  t.equal(eleventh.statusCode, 429, 'the 11th, on either instance, is over the one shared limit')
  t.equal(eleventh.json().code, 'rate_limited')
  t.ok(Number(eleventh.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await badLogin(second)).statusCode, 429, 'and the other instance agrees')
})

t.test('without REDIS_URL each instance counts alone', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const first = await build(t, { DATABASE_URL, RATE_LIMIT_AUTH: '2' })
  const second = await build(t, { DATABASE_URL, RATE_LIMIT_AUTH: '2' })
  for (let i = 0; i < 2; i++) await badLogin(first)
  t.equal((await badLogin(first)).statusCode, 429, 'the first instance is over its limit')
  t.equal((await badLogin(second)).statusCode, 401, 'the second has its own count')
})

t.test('Redis unreachable: requests are served uncounted, and counting resumes by itself', async (t) => {
  const proxy = await startTcpProxy({ port: REDIS_PORT })
  t.teardown(() => proxy.close())
  const app = await build(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_KEY_PREFIX: uniquePrefix(t), RATE_LIMIT_AUTH: '3' })

  for (let i = 0; i < 3; i++) t.equal((await badLogin(app)).statusCode, 401, `login ${i + 1} of 3 is answered`)
  t.equal((await badLogin(app)).statusCode, 429, 'the 4th is over the limit while Redis counts')

  // A blackhole: open connections die, new ones are accepted and never answered.
  proxy.cut()
  const during: number[] = []
  const started = Date.now()
  for (let i = 0; i < 20; i++) during.push((await badLogin(app)).statusCode)
  const elapsed = Date.now() - started
  t.same(during, Array(20).fill(401), 'with Redis away, every request is served (limits fail open), none is a 429 or a 5xx')
  t.ok(elapsed < 20 * 1000, `and none waited for a Redis timeout of its own (20 requests in ${elapsed} ms)`)

  await proxy.restore()
  // The counter in Redis still holds the 4 counted requests: once the client is back, 429 again.
  let resumed = false
  for (let i = 0; i < 50 && !resumed; i++) {
    await sleep(200)
    const status = (await badLogin(app)).statusCode
    t.not(status, 500, 'no 5xx while reconnecting')
    resumed = status === 429
  }
  t.ok(resumed, 'after Redis is back the shared count applies again, with no restart')
})
