import t from 'tap'
import { sql } from 'drizzle-orm'
import { outbox } from '../../drizzle/schema.js'
import type { App } from '../../src/app.js'
import { bearer, build, enrolTotp, freePort, login, newUser, registerAndLogin, totpCode } from '../helper.js'

// GET /metrics (API.md §18) after real traffic. The values are read back through prom-client's
// own registry API (getMetricsAsJSON): the one npm parser of the text format,
// parse-prometheus-text-format, folds every labelled histogram into one unlabelled sample. The
// text itself is checked line by line: every sample line is one series, so counting them counts
// the series, and the lines asserted are the ones Prometheus would read.

interface Sample { value: number, labels: Record<string, string | number>, metricName?: string }
interface Family { name: string, type: string, values: Sample[] }

const TOKEN = 'metrics-token-of-the-tests-0123456789abcdef'
const withToken = { authorization: `Bearer ${TOKEN}` }

/** GET /metrics as a scraper sends it, then the same registry's values as JSON. */
async function scrape (app: App): Promise<{ text: string, families: Family[] }> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: withToken })
  if (response.statusCode !== 200) throw new Error(`GET /metrics: ${response.statusCode} ${response.body}`)
  return { text: response.body, families: await app.metrics.registry!.getMetricsAsJSON() as unknown as Family[] }
}
const family = (families: Family[], name: string) => families.find((candidate) => candidate.name === name)
/** The value of `name` (a histogram's count) for the sample whose labels include `labels`. */
function valueOf (families: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = family(families, name)
  const sample = found?.values.find((candidate) => (found.type !== 'histogram' || candidate.metricName === `${name}_count`) &&
    Object.entries(labels).every(([key, value]) => candidate.labels[key] === value))
  return sample?.value
}
/** The sample lines of the exposition text: one per series. */
const sampleLines = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
/** The value on the text's line for `series` (name and labels exactly as written), if there is one. */
const lineValue = (text: string, series: string) => {
  const line = sampleLines(text).find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('after real traffic, the expected series are there', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, LOGIN_MAX_FAILURES: '2', RATE_LIMIT_AUTH: '100', REFRESH_REUSE_GRACE: '0' })
  const body = newUser()
  const session = await registerAndLogin(app, body)
  // A wrong password twice, then the per-account lockout.
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: 'wrong password!' } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })).statusCode, 429)
  // A refresh token spent, then presented again after the grace period (0 s): reuse.
  const other = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 401)
  const created = await app.inject({ method: 'POST', url: '/boards', headers: bearer(session.access_token), payload: { title: 'Counted', content: '' } })
  t.equal((await app.inject({ method: 'GET', url: `/boards/${created.json().id}`, headers: bearer(session.access_token) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/boards/999999999', headers: bearer(session.access_token) })).statusCode, 404)

  const { text, families } = await scrape(app)
  t.equal(lineValue(text, 'boardkit_http_requests_total{route="/boards/:id",method="GET",status_class="2xx"}'), 1, 'requests by route template, method and status class')
  t.match(text, '# TYPE boardkit_http_request_duration_seconds histogram\n', 'the text declares each family\'s type')
  t.equal(lineValue(text, 'boardkit_http_request_duration_seconds_count{route="/boards/:id",method="GET",status_class="2xx"}'), 1)
  t.equal(valueOf(families, 'boardkit_http_requests_total', { route: '/boards/:id', method: 'GET', status_class: '4xx' }), 1)
  t.equal(valueOf(families, 'boardkit_http_requests_total', { route: '/login', method: 'POST', status_class: '4xx' }), 3)
  t.equal(family(families, 'boardkit_http_request_duration_seconds')?.type, 'histogram')
  t.equal(valueOf(families, 'boardkit_http_request_duration_seconds', { route: '/boards', method: 'POST', status_class: '2xx' }), 1, 'a latency histogram per route too')
  t.equal(valueOf(families, 'boardkit_auth_logins_total', { outcome: 'succeeded' }), 2, 'logins: succeeded')
  t.equal(valueOf(families, 'boardkit_auth_logins_total', { outcome: 'failed' }), 2, 'logins: failed')
  t.equal(valueOf(families, 'boardkit_auth_logins_total', { outcome: 'locked' }), 1, 'logins: locked')
  t.equal(valueOf(families, 'boardkit_auth_refresh_reuse_detected_total'), 1, 'refresh reuse detected')
  t.equal(valueOf(families, 'boardkit_rate_limit_rejections_total', { limit: 'account' }), 1, 'the lockout counts as a rejection')
  for (const kind of ['select', 'insert', 'update']) t.ok(valueOf(families, 'boardkit_db_statement_duration_seconds', { kind })! > 0, `statement durations: ${kind}`)
  t.ok(valueOf(families, 'boardkit_db_pool_acquire_duration_seconds', { outcome: 'acquired' })! > 0, 'pool waits')
  t.equal(valueOf(families, 'boardkit_db_pool_connections_in_use'), 0, 'no connection held between requests')
  t.equal(valueOf(families, 'boardkit_db_pool_waiting_requests'), 0)
  t.equal(valueOf(families, 'boardkit_db_pool_acquire_timeouts_total'), 0)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
    t.ok(family(families, name), `default metric ${name}`)
  }
  t.notOk(text.includes(body.email), 'no label or value carries an email')
  t.ok(family(families, 'boardkit_outbox_depth'), 'the outbox reports its depth')
  t.ok(family(families, 'boardkit_outbox_oldest_age_seconds'), 'and its oldest message\'s age')
})

t.test('the per-IP limits count their rejections by limit', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, RATE_LIMIT_AUTH: '1', RATE_LIMIT_GLOBAL: '3' })
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password: 'wrong password!' } })
  for (let i = 0; i < 4; i++) await app.inject({ method: 'GET', url: '/health' })
  // Read through the registry: this address has spent its requests, GET /metrics included.
  const families = await app.metrics.registry!.getMetricsAsJSON() as unknown as Family[]
  t.equal(valueOf(families, 'boardkit_rate_limit_rejections_total', { limit: 'auth' }), 1)
  t.equal(valueOf(families, 'boardkit_rate_limit_rejections_total', { limit: 'global' }), 1)
  t.equal(valueOf(families, 'boardkit_http_requests_total', { route: '/health', status_class: '4xx' }), 1, 'the 429 is counted as a request too')
})

t.test('no id, email or raw URL in a label: 1,000 board ids or unknown URLs add no series', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const { access_token: token } = await registerAndLogin(app)
  const hit = (url: string) => app.inject({ method: 'GET', url, headers: bearer(token) })
  await hit('/boards/1')
  await hit('/no/such/route')
  // The first scrape adds GET /metrics's own series; count from the second on.
  await scrape(app)
  const before = await scrape(app)
  for (let id = 2; id <= 1000; id++) await hit(`/boards/${id}`)
  for (let i = 0; i < 1000; i++) await hit(`/no/such/route/${i}?email=user${i}@example.com`)
  const after = await scrape(app)
  const requestSeries = ({ text }: { text: string }) => sampleLines(text).filter((line) => line.startsWith('boardkit_http_'))
  t.same(requestSeries(after).map((line) => line.split(' ')[0]), requestSeries(before).map((line) => line.split(' ')[0]), 'the same request series, no new one')
  t.equal(sampleLines(after.text).length, sampleLines(before.text).length, 'the whole text: as many series as before')
  t.equal(valueOf(after.families, 'boardkit_http_requests_total', { route: '/boards/:id', status_class: '4xx' }), 1000, 'every board id under one route template')
  t.equal(valueOf(after.families, 'boardkit_http_requests_total', { route: '(unmatched)' }), 1001, 'every unknown URL under one label')
  t.notOk(/user\d+@example\.com|\/boards\/\d|\/no\/such/.test(after.text), 'no URL, id or email anywhere')
})

t.test('GET /metrics on the API port needs METRICS_TOKEN', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const missing = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'authorization_required')
  const wrong = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN.slice(1)}x` } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'token_invalid')
  t.match(wrong.headers['www-authenticate'], /error="invalid_token"/)
  const right = await app.inject({ method: 'GET', url: '/metrics', headers: withToken })
  t.equal(right.statusCode, 200)
  t.match(right.headers['content-type'], /^text\/plain; version=0\.0\.4/)
})

t.test('without METRICS_TOKEN or METRICS_PORT: nothing collected, /metrics is a 404 in the error shape', async (t) => {
  const app = await build(t)
  t.equal(app.metrics.enabled, false)
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: withToken })
  t.equal(response.statusCode, 404)
  t.same(response.json(), { statusCode: 404, error: 'Not Found', code: 'not_found', message: 'No route GET /metrics' })
  t.equal(await app.metrics.listen(), undefined, 'no listener to start')
  app.metrics.countLogin('succeeded')
  app.metrics.observeOutbox(() => ({ depth: 1, oldestAgeSeconds: 1 }))
  t.equal(await app.metrics.render(), '', 'the no-op collects nothing')
})

t.test('METRICS_PORT: a listener of its own, outside the API and its limits', async (t) => {
  const app = await build(t, { METRICS_PORT: '0', RATE_LIMIT_GLOBAL: '1' })
  const url = await app.metrics.listen()
  t.ok(url, 'listening')
  const onApiPort = await app.inject({ method: 'GET', url: '/metrics', headers: withToken })
  t.equal(onApiPort.statusCode, 404, 'not on the API port')
  for (let i = 0; i < 3; i++) t.equal((await fetch(`${url}/metrics`)).status, 200, 'no per-IP limit there')
  const text = await (await fetch(`${url}/metrics`)).text()
  t.equal(lineValue(text, 'boardkit_http_requests_total{route="/metrics",method="GET",status_class="4xx"}'), 1, 'the API\'s requests are in it')
  const other = await fetch(`${url}/boards`)
  t.equal(other.status, 404)
  t.equal((await other.json() as { code: string }).code, 'not_found')
  t.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 404)
})

t.test('METRICS_PORT with METRICS_TOKEN asks for the token there too', async (t) => {
  const port = await freePort()
  const app = await build(t, { METRICS_PORT: String(port), METRICS_TOKEN: TOKEN })
  const url = await app.metrics.listen()
  t.equal(url, `http://127.0.0.1:${port}`)
  const refused = await fetch(`${url}/metrics`)
  t.equal(refused.status, 401)
  t.equal(refused.headers.get('www-authenticate'), 'Bearer realm="boardkit"')
  t.equal((await refused.json() as { code: string }).code, 'authorization_required')
  t.equal((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  t.equal((await fetch(`${url}/metrics`, { headers: withToken })).status, 200)
  // A second app on the same port: the port is taken, and listen() says so.
  const second = await build(t, { DATABASE_URL: String(app.config.DATABASE_URL), METRICS_PORT: String(port), METRICS_TOKEN: TOKEN })
  await t.rejects(second.metrics.listen(), { code: 'EADDRINUSE' })
})

t.test('the pool: connections in use, requests waiting, waits that time out', async (t) => {
  // Only the request below may wait for the one connection: the outbox worker does not poll
  // meanwhile, and the scrape's outbox read is replaced by one that needs no connection.
  const app = await build(t, { METRICS_TOKEN: TOKEN, DB_POOL_SIZE: '1', DB_CONNECT_TIMEOUT: '300ms', OUTBOX_POLL_INTERVAL: '1h' })
  app.metrics.observeOutbox(() => ({ depth: 0, oldestAgeSeconds: 0 }))
  const held = await app.pool.getConnection()
  const waiting = app.inject({ method: 'GET', url: '/ready' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const { families: during } = await scrape(app)
  t.equal(valueOf(during, 'boardkit_db_pool_connections_in_use'), 1, 'the held connection is in use')
  t.equal(valueOf(during, 'boardkit_db_pool_waiting_requests'), 1, 'the request waits for it')
  t.equal((await waiting).statusCode, 503, 'and gives up after DB_CONNECT_TIMEOUT')
  held.release()
  const { families: after } = await scrape(app)
  t.equal(valueOf(after, 'boardkit_db_pool_acquire_timeouts_total'), 1, 'one timeout')
  t.equal(valueOf(after, 'boardkit_db_pool_acquire_duration_seconds', { outcome: 'timeout' }), 1)
  t.equal(valueOf(after, 'boardkit_db_pool_connections_in_use'), 0, 'released')
  t.equal(valueOf(after, 'boardkit_db_pool_waiting_requests'), 0)
})

t.test('an outbox reports through observeOutbox: one read per scrape', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  let reads = 0
  app.metrics.observeOutbox(async () => {
    reads += 1
    return { depth: 7, oldestAgeSeconds: 42.5 }
  })
  const text = await app.metrics.render()
  t.equal(lineValue(text, 'boardkit_outbox_depth'), 7)
  t.equal(lineValue(text, 'boardkit_outbox_oldest_age_seconds'), 42.5)
  t.equal(reads, 1, 'both gauges from one read')
  app.metrics.observeOutbox(() => ({ depth: 0, oldestAgeSeconds: 0 }))
  t.equal(lineValue(await app.metrics.render(), 'boardkit_outbox_depth'), 0, 'a second call replaces the reader')
})

t.test('the outbox gauges: the pending rows of the table, read at scrape time', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  // Not due for an hour, so the worker leaves them pending; the oldest written 90 s ago by the
  // database's clock. A finished row does not count.
  const later = sql`CURRENT_TIMESTAMP(3) + INTERVAL 1 HOUR`
  await app.db.insert(outbox).values([
    { kind: 'webhook', payload: '{}', available_at: later, created_at: sql`CURRENT_TIMESTAMP(3) - INTERVAL 90 SECOND` },
    { kind: 'webhook', payload: '{}', available_at: later },
    { kind: 'webhook', state: 'sent', created_at: sql`CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR`, finished_at: sql`CURRENT_TIMESTAMP(3)` },
  ])
  const { text } = await scrape(app)
  t.equal(lineValue(text, 'boardkit_outbox_depth'), 2, 'two messages waiting')
  const age = lineValue(text, 'boardkit_outbox_oldest_age_seconds')!
  t.ok(age >= 90 && age < 3600, `the oldest is the one of 90 s ago, not the sent one (got ${age})`)
  await app.db.delete(outbox)
  t.equal(lineValue(await app.metrics.render(), 'boardkit_outbox_depth'), 0, 'read again at the next scrape')
  t.equal(lineValue(await app.metrics.render(), 'boardkit_outbox_oldest_age_seconds'), 0, 'no age without a message')
})

t.test('an outbox that cannot be read: the scrape still answers, its gauges NaN', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  app.metrics.observeOutbox(async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })
  const { text } = await scrape(app)
  t.ok(Number.isNaN(lineValue(text, 'boardkit_outbox_depth')), 'depth: no value')
  t.ok(Number.isNaN(lineValue(text, 'boardkit_outbox_oldest_age_seconds')), 'age: no value')
  t.ok(lineValue(text, 'boardkit_auth_logins_total{outcome="succeeded"}') === 0, 'the other series are there')
})

t.test('the email_not_verified outcome', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, REQUIRE_EMAIL_VERIFICATION: 'true' })
  const body = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: body })
  await t.rejects(login(app, body.email, body.password))
  t.equal(valueOf((await scrape(app)).families, 'boardkit_auth_logins_total', { outcome: 'email_not_verified' }), 1)
})

t.test('a login with a second factor: mfa_required, then the second factor by method and outcome', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const me = await registerAndLogin(app)
  const { secret, recoveryCodes } = await enrolTotp(app, me)
  const startLogin = async () => (await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })).json().mfa_token as string
  const finish = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/login/mfa', payload })

  const first = await startLogin()
  const right = totpCode(secret, 1)
  t.equal((await finish({ mfa_token: first, code: right === '000000' ? '000001' : '000000' })).statusCode, 400, 'a wrong code')
  t.equal((await finish({ mfa_token: first, code: right })).statusCode, 200, 'a right one')
  t.equal((await finish({ mfa_token: first, code: right })).statusCode, 401, 'the spent mfa_token')
  t.equal((await finish({ mfa_token: await startLogin(), recovery_code: recoveryCodes[0]! })).statusCode, 200, 'a recovery code')

  const { families } = await scrape(app)
  t.equal(valueOf(families, 'boardkit_auth_logins_total', { outcome: 'mfa_required' }), 2, 'logins: mfa_required, once per password step')
  t.equal(valueOf(families, 'boardkit_auth_logins_total', { outcome: 'succeeded' }), 3, 'logins: succeeded (the first login, and both second steps)')
  t.equal(valueOf(families, 'boardkit_auth_second_factor_total', { method: 'totp', outcome: 'wrong_code' }), 1)
  t.equal(valueOf(families, 'boardkit_auth_second_factor_total', { method: 'totp', outcome: 'succeeded' }), 1)
  t.equal(valueOf(families, 'boardkit_auth_second_factor_total', { method: 'totp', outcome: 'invalid_token' }), 1)
  t.equal(valueOf(families, 'boardkit_auth_second_factor_total', { method: 'recovery_code', outcome: 'succeeded' }), 1)
  t.equal(valueOf(families, 'boardkit_auth_second_factor_total', { method: 'recovery_code', outcome: 'wrong_code' }), 0, 'every series exists from the start')
})
