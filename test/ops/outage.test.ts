import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { bearer, build, createTestDatabase, registerAndLogin, type Session } from '../helper.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// API.md §6: while the database is down every DB-backed route answers 503
// service_unavailable within about a second, /health stays 200, and the service recovers by
// itself when the database is back. The app talks to MariaDB through a TCP proxy that the
// tests cut (blackhole), refuse (listener closed) and restore.

/** A hang guard, not a benchmark: the contract says about a second, with 1 s timeouts. */
const HANG_GUARD_MS = 5000
const ERROR_KEYS = ['code', 'error', 'message', 'statusCode']

type Response = LightMyRequestResponse

/** The request, and how long the app took to answer it. */
async function timed (app: App, options: InjectOptions): Promise<{ response: Response, ms: number }> {
  const started = Date.now()
  const response = await app.inject(options)
  return { response, ms: Date.now() - started }
}

function expect503 (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 503, `${label}: status 503`, { body: response.body })
  let body: Record<string, unknown> = {}
  try { body = response.json() } catch { t.fail(`${label}: the body is JSON`, { body: response.body }) }
  t.same(Object.keys(body).sort(), ERROR_KEYS, `${label}: the error shape and nothing else`)
  t.equal(body.code, 'service_unavailable', `${label}: code service_unavailable`)
  t.equal(body.error, 'Service Unavailable', `${label}: error Service Unavailable`)
  t.notMatch(response.body, /ECONN|ETIMEDOUT|PROTOCOL_|stack|select|127\.0\.0\.1/i, `${label}: no driver detail leaks`)
  t.match(response.headers['retry-after'], /^\d+$/, `${label}: Retry-After in seconds`)
}

/** A fresh database, and an app that reaches it only through a fresh proxy. */
async function appBehindProxy (t: Test): Promise<{ app: App, proxy: TcpProxy }> {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 })
  const direct = new URL(await createTestDatabase(t))
  const app = await build(t, { DATABASE_URL: `mysql://root@127.0.0.1:${proxy.port}${direct.pathname}` })
  t.teardown(() => proxy.close())
  return { app, proxy }
}

const timings: Record<string, Record<string, number | number[]>> = {}

/** Polls GET /ready every 200 ms for up to 10 s; the time until the first 200, or null. */
async function waitUntilReady (app: App): Promise<number | null> {
  const started = Date.now()
  while (Date.now() - started < 10_000) {
    const response = await app.inject({ method: 'GET', url: '/ready' })
    if (response.statusCode === 200) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return null
}

async function outageScenario (t: Test, kind: 'cut' | 'refuse') {
  const { app, proxy } = await appBehindProxy(t)
  const times: Record<string, number | number[]> = {}
  timings[kind] = times
  let session: Session

  t.test('before the outage everything works through the proxy', async (t) => {
    session = await registerAndLogin(app)
    const boards = await app.inject({ method: 'GET', url: '/boards', headers: bearer(session.access_token) })
    t.equal(boards.statusCode, 200, 'GET /boards 200', { body: boards.body })
    t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'GET /ready 200')
    t.ok(proxy.accepted > 0, 'the app really talks to the database through the proxy')
  })

  t.test(`during the outage (${kind})`, async (t) => {
    if (kind === 'cut') proxy.cut()
    else await proxy.refuse()

    const ready = await timed(app, { method: 'GET', url: '/ready' })
    times.ready = ready.ms
    expect503(t, ready.response, 'GET /ready')
    t.ok(ready.ms < HANG_GUARD_MS, `GET /ready answered in ${ready.ms} ms`)

    const me = await timed(app, { method: 'GET', url: '/me', headers: bearer(session.access_token) })
    times.me = me.ms
    expect503(t, me.response, 'GET /me')
    t.ok(me.ms < HANG_GUARD_MS, `GET /me answered in ${me.ms} ms`)

    const create = await timed(app, {
      method: 'POST', url: '/boards', headers: bearer(session.access_token), payload: { title: 'During the outage', content: 'x' },
    })
    times.postBoards = create.ms
    expect503(t, create.response, 'POST /boards')
    t.ok(create.ms < HANG_GUARD_MS, `POST /boards answered in ${create.ms} ms`)

    const health = await timed(app, { method: 'GET', url: '/health' })
    times.health = health.ms
    t.equal(health.response.statusCode, 200, 'GET /health is still 200')
    t.same(health.response.json(), { status: 'ok' })
    t.ok(health.ms < HANG_GUARD_MS, `GET /health answered in ${health.ms} ms`)

    // More requests than the pool has connections (10): the queued ones must not hang behind
    // connection attempts that failed.
    const burst = await Promise.all(Array.from({ length: 50 }, () =>
      timed(app, { method: 'GET', url: '/me', headers: bearer(session.access_token) })))
    times.concurrentMe = burst.map((r) => r.ms)
    t.same(burst.map((r) => r.response.statusCode), Array(50).fill(503), "50 concurrent GET /me: all 503 (none 500)")
    t.ok(burst.every((r) => r.response.json().code === 'service_unavailable'), 'all service_unavailable')
    const slowest = Math.max(...burst.map((r) => r.ms))
    t.ok(slowest < HANG_GUARD_MS, `the slowest of the 50 answered in ${slowest} ms`)

    // Still 503 a second round (the pool does not get stuck in a state that answers 500).
    const again = await timed(app, { method: 'GET', url: '/ready' })
    times.readyAgain = again.ms
    expect503(t, again.response, 'GET /ready (again)')
    t.ok(again.ms < HANG_GUARD_MS, `GET /ready (again) answered in ${again.ms} ms`)
  })

  t.test('after restore() the service recovers by itself, same tokens', async (t) => {
    await proxy.restore()
    const recovered = await waitUntilReady(app)
    times.recovery = recovered ?? -1
    t.not(recovered, null, `GET /ready is 200 again within 10 s (took ${recovered} ms)`)

    const me = await timed(app, { method: 'GET', url: '/me', headers: bearer(session.access_token) })
    times.meAfter = me.ms
    t.equal(me.response.statusCode, 200, 'GET /me 200 with the same access token', { body: me.response.body })
    t.equal(me.response.json().id, session.user.id)

    const create = await app.inject({
      method: 'POST', url: '/boards', headers: bearer(session.access_token), payload: { title: `After the ${kind}`, content: 'back' },
    })
    t.equal(create.statusCode, 201, 'POST /boards 201', { body: create.body })
    const id = create.json().id as number
    t.equal(create.headers.location, `/boards/${id}`)

    const read = await app.inject({ method: 'GET', url: `/boards/${id}`, headers: bearer(session.access_token) })
    t.equal(read.statusCode, 200, 'the new board is readable')

    const list = await app.inject({ method: 'GET', url: '/boards', headers: bearer(session.access_token) })
    t.equal(list.statusCode, 200)
    const titles = (list.json().items as Array<{ title: string }>).map((b) => b.title)
    t.same(titles, [`After the ${kind}`], 'the board written during the outage was not stored; the one after was')
  })
}

t.test('blackhole: cut() destroys the connections and new ones hang', (t) => outageScenario(t, 'cut'))
t.test('refused: refuse() closes the listener', (t) => outageScenario(t, 'refuse'))

t.test('a second outage after recovery behaves the same', async (t) => {
  const { app, proxy } = await appBehindProxy(t)
  const session = await registerAndLogin(app)
  for (const round of [1, 2]) {
    proxy.cut()
    const me = await timed(app, { method: 'GET', url: '/me', headers: bearer(session.access_token) })
    expect503(t, me.response, `round ${round}: GET /me`)
    t.ok(me.ms < HANG_GUARD_MS, `round ${round}: GET /me answered in ${me.ms} ms`)
    await proxy.restore()
    t.not(await waitUntilReady(app), null, `round ${round}: ready again`)
    const after = await app.inject({ method: 'GET', url: '/me', headers: bearer(session.access_token) })
    t.equal(after.statusCode, 200, `round ${round}: GET /me 200 after restore`)
  }
})

t.teardown(() => {
  // The measured times, for the record (tap shows comments in its output).
  t.comment(`outage timings (ms): ${JSON.stringify(timings)}`)
})
