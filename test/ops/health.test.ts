import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { bearer, build, freePort, registerAndLogin, testConfig } from '../helper.js'

const ERROR_KEYS = ['code', 'error', 'message', 'statusCode']

t.test('with the database up', async (t) => {
  const app = await build(t)

  t.test('GET /health is 200 {status: ok}', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/health' })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { status: 'ok' })
  })

  t.test('GET /ready is 200 {status: ok}', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { status: 'ok' })
  })
})

t.test('with the database unreachable (closed port)', async (t) => {
  // A token signed with the test secret by an app that has a database.
  const healthy = await build(t)
  const session = await registerAndLogin(healthy)

  // buildApp directly: the helper's build() would try to create the database.
  const port = await freePort()
  const app = await buildApp(testConfig({ DATABASE_URL: `mysql://root@127.0.0.1:${port}/x` }))
  t.teardown(() => app.close())
  await app.ready()

  const expect503 = (t: Test, response: Awaited<ReturnType<typeof app.inject>>) => {
    t.equal(response.statusCode, 503, 'status 503', { body: response.body })
    const body = response.json()
    t.same(Object.keys(body).sort(), ERROR_KEYS, 'the error shape and nothing else')
    t.equal(body.statusCode, 503)
    t.equal(body.error, 'Service Unavailable')
    t.equal(body.code, 'service_unavailable')
    t.type(body.message, 'string')
    t.notMatch(response.body, /ECONNREFUSED|stack|select|127\.0\.0\.1/i, 'no driver detail leaks')
    t.match(response.headers['retry-after'], /^\d+$/, 'Retry-After in seconds')
  }

  // Each request must complete (well under any connect timeout); the tap timeout would
  // catch a hang. The elapsed time is not asserted, only that an answer comes.
  t.test('GET /ready is 503 service_unavailable with Retry-After', async (t) => {
    expect503(t, await app.inject({ method: 'GET', url: '/ready' }))
  })

  t.test('GET /health is still 200: liveness does not touch the database', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/health' })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { status: 'ok' })
  })

  t.test('POST /login is 503 service_unavailable, not 500', async (t) => {
    expect503(t, await app.inject({ method: 'POST', url: '/login', payload: { email: 'ada@example.com', password: 'correct horse battery' } }))
  })

  t.test('POST /register is 503 service_unavailable, not 500', async (t) => {
    expect503(t, await app.inject({ method: 'POST', url: '/register', payload: { email: 'ada@example.com', name: 'Ada', password: 'correct horse battery' } }))
  })

  t.test('GET /me with a well-formed, correctly signed token is 503', async (t) => {
    expect503(t, await app.inject({ method: 'GET', url: '/me', headers: bearer(session.access_token) }))
  })

  t.test('a burst of concurrent requests all get their 503', async (t) => {
    const responses = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: '/ready' })))
    t.same(responses.map((r) => r.statusCode), [503, 503, 503, 503, 503])
  })
})
