import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { createConnection, type RowDataPacket } from 'mysql2/promise'
import t from 'tap'

// API.md §11 on a real cluster: scripts/test-cluster.sh starts `npm run cluster` (3 Galera
// nodes, Redis, 3 instances each preferring its own node, HAProxy) and runs this file. Every
// loop is bounded in count and time, and every target is on loopback.

const run = promisify(execFile)
const CLUSTER_DIR = process.env.CLUSTER_DIR ?? '/tmp/boardkit-cluster'
const API_PORT = Number(process.env.API_PORT ?? 3101)
const GALERA_PORT = Number(process.env.GALERA_PORT ?? 4306)
const HAPROXY = `http://127.0.0.1:${process.env.CLUSTER_PORT ?? 8080}`
const PROMETHEUS = `http://127.0.0.1:${process.env.PROMETHEUS_PORT ?? Number(process.env.CLUSTER_PORT ?? 8080) + 1010}`
const INSTANCES = [0, 1, 2].map((i) => `http://127.0.0.1:${API_PORT + i}`)
const NODE_PORTS = [0, 1, 2].map((i) => GALERA_PORT + i)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Reply { status: number, body: any }

async function call (base: string, method: string, path: string, { token, body }: { token?: string, body?: unknown } = {}): Promise<Reply> {
  try {
    const response = await fetch(base + path, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token && { authorization: `Bearer ${token}` }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    let parsed = null
    // HAProxy's own 502/503 pages are HTML.
    try { parsed = text ? JSON.parse(text) : null } catch { parsed = text }
    return { status: response.status, body: parsed }
  } catch {
    return { status: 0, body: null } // no answer at all (connection reset, timeout)
  }
}

let users = 0
async function newSession (base: string) {
  users += 1
  const email = `cluster${users}-${process.pid}-${Date.now()}@example.com`
  const registered = await call(base, 'POST', '/register', { body: { email, name: `Cluster ${users}`, password: 'correct horse battery' } })
  if (registered.status !== 201) throw new Error(`register: ${registered.status}`)
  return login(base, email)
}
async function login (base: string, email: string) {
  const reply = await call(base, 'POST', '/login', { body: { email, password: 'correct horse battery' } })
  if (reply.status !== 200) throw new Error(`login: ${reply.status}`)
  return { ...reply.body as { access_token: string, refresh_token: string }, email }
}

/** Runs `count` jobs, `width` at a time. */
async function inParallel (count: number, width: number, job: (i: number) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await job(next++)
  }))
}

/**
 * Writers creating boards through every instance until stopped (bounded by `maxMs`). Each
 * board answered 201 is an acknowledged write; each 5xx is kept with its time.
 */
function startWriters (bases: string[], perBase: number, maxMs: number) {
  const acknowledged: number[] = []
  const failures: { status: number, at: number }[] = []
  let requests = 0
  let stopping = false
  const deadline = Date.now() + maxMs
  const done = Promise.all(bases.flatMap((base) => Array.from({ length: perBase }, async () => {
    const session = await newSession(base)
    while (!stopping && Date.now() < deadline) {
      requests += 1
      const reply = await call(base, 'POST', '/boards', { token: session.access_token, body: { title: 'load', content: 'x' } })
      if (reply.status === 201) acknowledged.push(reply.body.id)
      else if (reply.status >= 500 || reply.status === 0) {
        failures.push({ status: reply.status, at: Date.now() })
        await sleep(50)
      }
    }
  })))
  return {
    acknowledged, failures,
    get requests () { return requests },
    async stop () { stopping = true; await done },
  }
}

/** The ids of `ids` that node `port` does not have (read after it applied everything before). */
async function missingOn (port: number, ids: number[]): Promise<number[]> {
  const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', database: 'boardkit' })
  try {
    await connection.query('SET SESSION wsrep_sync_wait = 1')
    const found = new Set<number>()
    for (let start = 0; start < ids.length; start += 1000) {
      const chunk = ids.slice(start, start + 1000)
      // Primary-key lookups on boards.
      const [rows] = await connection.query<RowDataPacket[]>('SELECT id FROM boards WHERE id IN (?)', [chunk])
      for (const row of rows) found.add(row.id)
    }
    return ids.filter((id) => !found.has(id))
  } finally {
    await connection.end()
  }
}

// First: a later test SIGKILLs an instance, whose target is then down.
t.test('Prometheus scrapes all three instances, and their series are there (API.md §18)', async (t) => {
  interface Target { health: string, scrapeUrl: string, lastError: string }
  let targets: Target[] = []
  // The first scrape comes within one scrape_interval (5 s) of the start; 60 s at most.
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(1000)) {
    const reply = await fetch(`${PROMETHEUS}/api/v1/targets?state=active`).then((response) => response.json(), () => null) as { data?: { activeTargets: Target[] } } | null
    targets = reply?.data?.activeTargets ?? []
    if (targets.length === 3 && targets.every((target) => target.health === 'up')) break
  }
  t.same(targets.map((target) => target.health), ['up', 'up', 'up'], 'three targets, all up', { targets })
  t.same(targets.map((target) => new URL(target.scrapeUrl).port).sort(), INSTANCES.map((base) => String(Number(new URL(base).port) + 100)).sort(),
    'each instance\'s METRICS_PORT')
  // Traffic through HAProxy, then the instances' own series through PromQL.
  await newSession(HAPROXY)
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(1000)) {
    const reply = await call(PROMETHEUS, 'GET', `/api/v1/query?query=${encodeURIComponent('sum(boardkit_auth_logins_total{outcome="succeeded"})')}`)
    if (Number(reply.body?.data?.result?.[0]?.value?.[1] ?? 0) >= 1) break
  }
  const up = await call(PROMETHEUS, 'GET', `/api/v1/query?query=${encodeURIComponent('sum(up{job="boardkit"})')}`)
  t.equal(up.body?.data?.result?.[0]?.value?.[1], '3', 'PromQL: sum(up) is 3')
  const logins = await call(PROMETHEUS, 'GET', `/api/v1/query?query=${encodeURIComponent('sum(boardkit_auth_logins_total{outcome="succeeded"})')}`)
  t.ok(Number(logins.body?.data?.result?.[0]?.value?.[1]) >= 1, 'a login through HAProxy is counted', { body: logins.body })
})

t.test('a logout through one node is seen by the next request through another, under write load', async (t) => {
  const writers = startWriters(INSTANCES, 2, 120_000)
  let accepted = 0
  let other = 0
  await inParallel(200, 4, async (i) => {
    const [a, b] = [i % 3, (i + 1 + (i % 2)) % 3]
    const session = await login(INSTANCES[a]!, (await newSession(INSTANCES[a]!)).email)
    const logout = await call(INSTANCES[a]!, 'POST', '/logout', { token: session.access_token })
    if (logout.status !== 204) { other += 1; return }
    const next = await call(INSTANCES[b]!, 'GET', '/me', { token: session.access_token })
    if (next.status === 200) accepted += 1
    else if (next.status !== 401 || next.body?.code !== 'token_revoked') other += 1
  })
  await writers.stop()
  t.comment(`200 pairs: ${accepted} revoked tokens accepted, ${other} other answers; ${writers.acknowledged.length} background writes`)
  t.equal(accepted, 0, 'no revoked token is accepted through another node')
  t.equal(other, 0, 'every logout is 204 and every next request 401 token_revoked')
})

t.test('a board written through one node is read at once through another, under write load', async (t) => {
  const writers = startWriters(INSTANCES, 2, 120_000)
  const sessions = await Promise.all(INSTANCES.map((base) => newSession(base)))
  let missing = 0
  let other = 0
  await inParallel(200, 4, async (i) => {
    const [a, b] = [i % 3, (i + 1 + (i % 2)) % 3]
    const created = await call(INSTANCES[a]!, 'POST', '/boards', { token: sessions[a]!.access_token, body: { title: `b${i}`, content: '' } })
    if (created.status !== 201) { other += 1; return }
    const read = await call(INSTANCES[b]!, 'GET', `/boards/${created.body.id}`, { token: sessions[b]!.access_token })
    if (read.status === 404) missing += 1
    else if (read.status !== 200) other += 1
  })
  await writers.stop()
  t.comment(`200 boards: ${missing} missing on the other node, ${other} other answers`)
  t.equal(missing, 0, 'no board is 404 through another node right after its 201')
  t.equal(other, 0, 'every write 201, every read 200')
})

t.test('of one refresh token sent to 3 instances on 3 nodes at once, exactly one wins', async (t) => {
  const email = (await newSession(INSTANCES[0]!)).email
  let badRounds = 0
  let serverErrors = 0
  for (let round = 0; round < 50; round++) {
    const session = await login(INSTANCES[round % 3]!, email)
    const replies = await Promise.all(INSTANCES.map((base) => call(base, 'POST', '/refresh', { body: { refresh_token: session.refresh_token } })))
    const statuses = replies.map((reply) => reply.status)
    if (statuses.filter((status) => status === 200).length !== 1 || statuses.filter((status) => status === 401).length !== 2) badRounds += 1
    serverErrors += statuses.filter((status) => status >= 500 || status === 0).length
  }
  t.comment(`50 rounds: ${badRounds} without exactly one 200 and two 401, ${serverErrors} 5xx`)
  t.equal(badRounds, 0, 'each round: one 200, two 401')
  t.equal(serverErrors, 0, 'no 5xx')
})

t.test('two admins demoting each other through two nodes at once: never zero admins (50 rounds)', async (t) => {
  const first = await newSession(INSTANCES[0]!)
  const second = await newSession(INSTANCES[1]!)
  const connection = await createConnection({ host: '127.0.0.1', port: NODE_PORTS[0], user: 'root', database: 'boardkit' })
  t.teardown(() => connection.end())
  await connection.query('SET SESSION wsrep_sync_wait = 1')
  const idOf = async (email: string) => ((await connection.query<RowDataPacket[]>('SELECT id FROM users WHERE email = ?', [email]))[0][0]!).id as number
  const ids = [await idOf(first.email), await idOf(second.email)]
  const outcomes = new Map<number, number>()
  let roundsWithoutAdmin = 0
  let roundsWithBoth = 0
  for (let round = 0; round < 50; round++) {
    // Exactly these two are the admins; each logs in (a role change ends the demoted one's sessions).
    await connection.query("UPDATE users SET role = 'user' WHERE role = 'admin' AND id NOT IN (?)", [ids])
    await connection.query("UPDATE users SET role = 'admin' WHERE id IN (?)", [ids])
    const [a, b] = await Promise.all([login(INSTANCES[0]!, first.email), login(INSTANCES[1]!, second.email)])
    // A through node 1 demotes B while B through node 2 demotes A.
    const replies = await Promise.all([
      call(INSTANCES[0]!, 'PATCH', `/users/${ids[1]}`, { token: a.access_token, body: { role: 'user' } }),
      call(INSTANCES[1]!, 'PATCH', `/users/${ids[0]}`, { token: b.access_token, body: { role: 'user' } }),
    ])
    for (const reply of replies) outcomes.set(reply.status, (outcomes.get(reply.status) ?? 0) + 1)
    const [rows] = await connection.query<RowDataPacket[]>("SELECT COUNT(*) AS admins FROM users WHERE role = 'admin'")
    const admins = Number(rows[0]!.admins)
    if (admins === 0) roundsWithoutAdmin += 1
    if (replies.every((reply) => reply.status === 200)) roundsWithBoth += 1
  }
  t.comment(`50 rounds, answers by status: ${JSON.stringify(Object.fromEntries(outcomes))}`)
  t.equal(roundsWithoutAdmin, 0, 'no round ends with zero admins')
  t.equal(roundsWithBoth, 0, 'no round lets both demotions succeed')
  t.ok((outcomes.get(200) ?? 0) >= 1, 'demotions do go through (the test is not refusing everything)')
  // Leave no admin behind for the other tests: they never needed one.
  await connection.query("UPDATE users SET role = 'user' WHERE id IN (?)", [ids])
})

t.test('a Galera node SIGKILLed and restarted under load loses no acknowledged write', async (t) => {
  const bases = [...INSTANCES, HAPROXY]
  const writers = startWriters(bases, 2, 90_000)
  await sleep(2000)
  const killedAt = Date.now()
  await run('bash', ['scripts/galera.sh', 'kill-node', '2'], { env: { ...process.env, GALERA_DIR: `${CLUSTER_DIR}/galera` } })
  await sleep(3000)
  await run('bash', ['scripts/galera.sh', 'start-node', '2'], { env: { ...process.env, GALERA_DIR: `${CLUSTER_DIR}/galera` }, timeout: 120_000 })
  const rejoinedAt = Date.now()
  await sleep(3000)
  await writers.stop()

  const ids = writers.acknowledged
  const statuses = [...new Set(writers.failures.map((failure) => failure.status))]
  const window = writers.failures.length === 0 ? [0, 0] : [
    Math.min(...writers.failures.map((failure) => failure.at)) - killedAt,
    Math.max(...writers.failures.map((failure) => failure.at)) - killedAt,
  ]
  t.comment(`${writers.requests} writes sent, ${ids.length} acknowledged; ${writers.failures.length} 5xx (${statuses.join(', ') || 'none'}) ` +
    `from ${window[0]} ms to ${window[1]} ms after the kill; node 2 rejoined after ${rejoinedAt - killedAt} ms`)
  t.ok(ids.length > 0, 'writes were acknowledged during the run')
  t.same(statuses.filter((status) => status !== 503), [], 'every 5xx is a 503')
  t.ok(writers.failures.every((failure) => failure.at >= killedAt - 1000 && failure.at <= rejoinedAt + 3000),
    '503s only between the kill and the node being back')
  for (const [n, port] of NODE_PORTS.entries()) {
    t.same(await missingOn(port, ids), [], `every acknowledged write is on node ${n + 1}`)
  }
})

t.test('an API instance SIGKILLed under load: HAProxy moves its traffic, no acknowledged write lost', async (t) => {
  const writers = startWriters([HAPROXY], 6, 60_000)
  await sleep(2000)
  const pid = Number(readFileSync(`${CLUSTER_DIR}/api3.pid`, 'utf8'))
  const killedAt = Date.now()
  process.kill(pid, 'SIGKILL')
  await sleep(5000)
  const before = writers.acknowledged.length
  await sleep(3000)
  const after = writers.acknowledged.length
  await writers.stop()

  const late = writers.failures.filter((failure) => failure.at > killedAt + 3000)
  t.comment(`${writers.requests} writes through HAProxy, ${writers.acknowledged.length} acknowledged, ` +
    `${writers.failures.length} failed (${[...new Set(writers.failures.map((failure) => failure.status))].join(', ') || 'none'}), ${late.length} of them later than 3 s after the kill`)
  t.ok(after > before, 'writes go on through the two remaining instances')
  t.equal(late.length, 0, 'no failure once HAProxy has marked the instance down')
  for (const [n, port] of NODE_PORTS.entries()) {
    t.same(await missingOn(port, writers.acknowledged), [], `every acknowledged write is on node ${n + 1}`)
  }
})
