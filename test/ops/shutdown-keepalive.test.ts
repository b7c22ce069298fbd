import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Agent, request } from 'node:http'
import { createConnection } from 'mysql2/promise'
import t, { type Test } from 'tap'
import { createTestDatabase, freePort, REPO_ROOT, SERVER_ARGS } from '../helper.js'

// SIGTERM while writers keep sending on keep-alive connections, ten times over. A request the
// server received is answered; a connection is closed only after a response that says
// `Connection: close`, or once idle; so a client never sees a reset, which would leave it not
// knowing whether its write happened. After SIGTERM a client sees its answer (201, or 503 for a
// request that arrived too late) and then a refused connection. The process exits 0.

const ROUNDS = 10
const WRITERS = 8
/** SIGTERM once this many boards were created in the round. */
const SIGTERM_AFTER = 20
const SECRET = randomBytes(48).toString('base64url')
/** Servers booting ahead of the round that uses them. */
const AHEAD = 2

// Ten server processes: on a machine busy with other test files this can approach .taprc's
// 120 s per file, so this file asks for more.
t.setTimeout(300_000)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Outcome { round: number, title: string, afterSigterm: boolean, status?: number, id?: number, connection?: string, error?: string }

/** One POST /boards over the keep-alive agent. */
function postBoard (port: number, agent: Agent, token: string, title: string): Promise<{ status: number, body: string, connection?: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ title, content: 'keep-alive writer' })
    const outgoing = request({
      host: '127.0.0.1', port, path: '/boards', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` },
    }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode!, body, connection: response.headers.connection }))
      response.on('error', reject)
    })
    outgoing.on('error', reject)
    outgoing.end(payload)
  })
}

async function json (url: string, body: object) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

interface ServerProcess { port: number, child: ChildProcess, output: () => string, exited: Promise<[number | null, string | null]>, healthy: Promise<boolean> }

/** The real server on its own port, over the given (already migrated) database. */
async function startServer (t: Test, databaseUrl: string): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'warn', JWT_SECRET: SECRET,
      DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port),
      RATE_LIMIT_AUTH: '0', RATE_LIMIT_REFRESH: '0', RATE_LIMIT_GLOBAL: '0', LOGIN_MAX_FAILURES: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  })
  const healthy = (async () => {
    const startedAt = Date.now()
    while (Date.now() - startedAt < 90_000 && child.exitCode === null) {
      if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) return true
      await sleep(50)
    }
    return false
  })()
  return { port, child, output: () => output, exited, healthy }
}

t.test(`SIGTERM under ${WRITERS} keep-alive writers, ${ROUNDS} times: no resets, every 201 stored, exit 0`, async (t) => {
  // Migrated once here, so the servers can boot while earlier rounds run without racing each
  // other's migrations. Only AHEAD at a time: ten booting at once starve the other test files
  // running in parallel (one of them waits 30 s for its own server).
  const databaseUrl = await createTestDatabase(t)
  const servers: Array<Promise<ServerProcess>> = []
  const startUpTo = (count: number) => {
    while (servers.length < Math.min(count, ROUNDS)) servers.push(startServer(t, databaseUrl))
  }
  const outcomes: Outcome[] = []
  const exits: Array<{ round: number, code: number | null, signal: string | null, ms: number }> = []
  let token = ''

  for (let round = 1; round <= ROUNDS; round++) {
    startUpTo(round + AHEAD)
    const { port, child, output, exited, healthy } = await servers[round - 1]!
    const base = `http://127.0.0.1:${port}`
    if (!await healthy) {
      t.fail(`round ${round}: the server started`, { output: output() })
      return
    }
    if (!token) {
      const user = { email: `drain-${randomBytes(3).toString('hex')}@example.com`, name: 'Drain', password: 'correct horse battery' }
      t.equal((await json(`${base}/register`, user)).status, 201, 'registered')
      token = (await json(`${base}/login`, { email: user.email, password: user.password })).body.access_token as string
    }

    // Each writer sends on its own keep-alive connection until the server is gone.
    const agent = new Agent({ keepAlive: true, maxSockets: WRITERS })
    let created = 0
    let sigtermAt = 0
    let sequence = 0
    const writer = async () => {
      for (;;) {
        const outcome: Outcome = { round, title: `r${round} w${sequence++}`, afterSigterm: sigtermAt > 0 }
        try {
          const response = await postBoard(port, agent, token, outcome.title)
          outcome.status = response.status
          outcome.connection = response.connection
          if (response.status === 201) outcome.id = Number(JSON.parse(response.body).id)
        } catch (error) {
          outcome.error = (error as NodeJS.ErrnoException).code ?? String(error)
        }
        outcomes.push(outcome)
        if (outcome.error) return
        if (outcome.status === 201 && ++created === SIGTERM_AFTER) {
          sigtermAt = Date.now()
          child.kill('SIGTERM')
        }
      }
    }
    await Promise.all(Array.from({ length: WRITERS }, writer))
    agent.destroy()

    let timer: NodeJS.Timeout | undefined
    const [code, signal] = await Promise.race([exited, new Promise<[null, string]>((resolve) => {
      timer = setTimeout(() => resolve([null, 'hung']), 20_000)
    })])
    clearTimeout(timer)
    exits.push({ round, code, signal, ms: Date.now() - sigtermAt })
    if (code !== 0) t.fail(`round ${round}: exit ${code}/${signal}`, { output: output() })
  }

  const resets = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED')
  const tally = outcomes.reduce<Record<string, number>>((counts, o) => {
    const key = o.error ?? String(o.status)
    counts[key] = (counts[key] ?? 0) + 1
    return counts
  }, {})
  t.comment(`${ROUNDS} shutdowns: ${outcomes.length} requests ${JSON.stringify(tally)}; resets ${resets.length}; ` +
    `exit after SIGTERM (ms) ${exits.map((e) => e.ms).join(' ')}`)

  t.same(exits.map((e) => [e.code, e.signal]), Array(ROUNDS).fill([0, null]), 'every shutdown exits 0')
  t.same(resets, [], 'no request ended in a reset: only answers and, once the server stopped listening, refusals')
  t.same(outcomes.filter((o) => o.status !== undefined && o.status !== 201 && o.status !== 503), [], 'nothing but 201 and 503')
  const afterSigterm = outcomes.filter((o) => o.afterSigterm && o.status !== undefined)
  t.ok(afterSigterm.length > 0, `requests sent after SIGTERM were answered (${afterSigterm.length})`)
  // (Not every one: the first may be handled before the child has received its signal.)
  const closing = afterSigterm.filter((o) => o.connection === 'close')
  t.ok(closing.length >= ROUNDS, `answers after SIGTERM say Connection: close (${closing.length} of ${afterSigterm.length})`)

  const connection = await createConnection(databaseUrl)
  const [rows] = await connection.query('SELECT id, title FROM boards') as unknown as [Array<{ id: number, title: string }>]
  await connection.end()
  const stored = new Map(rows.map((row) => [Number(row.id), row.title]))
  const created = outcomes.filter((o) => o.status === 201)
  t.same(created.filter((o) => stored.get(o.id!) !== o.title), [], `all ${created.length} boards answered 201 are stored`)
  t.equal(stored.size, created.length, 'and no board whose writer was not told 201')
})
