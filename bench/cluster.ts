// npm run bench -- --cluster [-- --duration 10]
// The same scenarios through HAProxy in front of 3 instances on 3 Galera nodes, and against one
// instance on one node, in one run; then the cost of wsrep_sync_wait per statement, measured on
// a node directly. Starts the local cluster (scripts/cluster.sh) and always stops it.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import autocannon, { type Options, type Result } from 'autocannon'
import { createConnection } from 'mysql2/promise'

const run = promisify(execFile)
const CLUSTER_DIR = '/tmp/boardkit-cluster-bench'
const CLUSTER_PORT = 8095
const API_PORT = 3121
const GALERA_PORT = 4306
const ENV = {
  ...process.env, CLUSTER_DIR, CLUSTER_PORT: String(CLUSTER_PORT), API_PORT: String(API_PORT),
  // Limits off, which production refuses (API.md §12): the instances run as a benchmark harness.
  NODE_ENV: 'test', RATE_LIMIT_AUTH: '0', RATE_LIMIT_REFRESH: '0', RATE_LIMIT_GLOBAL: '0', LOGIN_MAX_FAILURES: '0',
}

interface Row { target: string, scenario: string, requestsPerSecond: number, p50Ms: number, p99Ms: number, non2xx: number, errors: number }

function cannon (options: Options): Promise<Result> {
  return new Promise((resolve, reject) => autocannon(options, (error, result) => error ? reject(error) : resolve(result)))
}

async function session (base: string, n: number) {
  const email = `bench${n}-${Date.now()}@cluster.test`
  const body = { email, name: `Bench ${n}`, password: 'bench-password-123' }
  await fetch(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const reply = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: body.password }) })
  return (await reply.json() as { access_token: string }).access_token
}

/**
 * Milliseconds a primary-key read takes on node `port` without and with wsrep_sync_wait, as the
 * medians of rounds that alternate the two (one connection, so each statement waits for the
 * one before; alternating keeps a drift of the machine's load from landing on one side).
 */
async function syncWaitCost (port: number, rounds: number, perRound: number): Promise<{ without: number, with: number }> {
  const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', database: 'boardkit' })
  const timeRound = async (syncWait: number) => {
    await connection.query('SET SESSION wsrep_sync_wait = ?', [syncWait])
    const started = process.hrtime.bigint()
    // Primary-key lookup on users, as the token check's first probe.
    for (let i = 0; i < perRound; i++) await connection.execute('SELECT id, role FROM users WHERE id = ?', [1])
    return Number(process.hrtime.bigint() - started) / 1e6 / perRound
  }
  await timeRound(0)
  await timeRound(7)
  const samples: Record<0 | 7, number[]> = { 0: [], 7: [] }
  for (let round = 0; round < rounds; round++) {
    for (const syncWait of round % 2 === 0 ? [0, 7] as const : [7, 0] as const) samples[syncWait].push(await timeRound(syncWait))
  }
  await connection.end()
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  return { without: median(samples[0]), with: median(samples[7]) }
}

export async function benchCluster (duration: number, connections: number): Promise<void> {
  console.error('starting the local cluster (3 Galera nodes, 3 instances, HAProxy)')
  await run('bash', ['scripts/cluster.sh', 'stop'], { env: ENV })
  await run('bash', ['scripts/cluster.sh', 'start'], { env: ENV, timeout: 180_000 })
  const rows: Row[] = []
  try {
    const targets = [
      { name: 'HAProxy → 3 instances on 3 nodes', url: `http://127.0.0.1:${CLUSTER_PORT}` },
      { name: '1 instance on 1 node', url: `http://127.0.0.1:${API_PORT}` },
    ]
    for (const target of targets) {
      const token = await session(target.url, rows.length)
      const auth = { authorization: `Bearer ${token}` }
      const scenarios: [string, Options][] = [
        ['GET /health', { url: `${target.url}/health` }],
        ['GET /me', { url: `${target.url}/me`, headers: auth }],
        ['POST /boards', {
          url: `${target.url}/boards`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ title: 'Benchmark board', content: 'Written by npm run bench -- --cluster.' }),
        }],
      ]
      for (const [scenario, options] of scenarios) {
        await cannon({ ...options, duration: 2, connections })
        const result = await cannon({ ...options, duration, connections })
        const row = {
          target: target.name, scenario, requestsPerSecond: Math.round(result.requests.average),
          p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx, errors: result.errors + result.timeouts,
        }
        rows.push(row)
        console.error(`  ${target.name}, ${scenario}: ${row.requestsPerSecond} req/s, p99 ${row.p99Ms} ms`)
      }
    }
    const lines = ['| target | scenario | req/s | p50 ms | p99 ms | non-2xx | errors |', '| --- | --- | ---: | ---: | ---: | ---: | ---: |']
    for (const row of rows) lines.push(`| ${row.target} | ${row.scenario} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.non2xx} | ${row.errors} |`)
    console.log(lines.join('\n'))

    const cost = await syncWaitCost(GALERA_PORT + 1, 10, 1000)
    console.log(`\nwsrep_sync_wait on a primary-key read, one connection to node 2, medians of 10 alternating rounds of 1000: ` +
      `${cost.without.toFixed(3)} ms without, ${cost.with.toFixed(3)} ms with (${(cost.with - cost.without).toFixed(3)} ms a statement)`)
  } finally {
    await run('bash', ['scripts/cluster.sh', 'stop'], { env: ENV })
  }
}
