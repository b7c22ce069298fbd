// npm run bench -- --telemetry [-- --duration 10] [-- --rounds 3]
// What metrics and traces cost (API.md §18): three API processes on one database, as `npm start`
// runs them, alike but for their settings: nothing (off), metrics on (METRICS_TOKEN: every
// request counted and timed, every statement and pool wait too) and traces on at 100 % sampling
// (OTEL_TRACES_SAMPLER=always_on, spans exported by OTLP/HTTP JSON to a receiver in this process
// that reads and drops them). Each scenario is measured on the three in turn, `rounds` times with
// the order rotated, so the machine's drift falls on all three alike; the ratios to "off" are
// the figures (docs/benchmarks.md). The budget: metrics ≤ 5 %, traces ≤ 15 %.
//
// Two figures per scenario. Throughput (req/s) is what a client sees, and on a shared machine it
// swings with everything else that runs. The API process's CPU time per request (from
// process.cpuUsage, bench/api-probe.js) is the cost itself, and barely moves with the machine's
// load: the budget is judged on it, the throughput ratio shown beside it. The spans' receiver
// runs in this process, so their export is counted (serialising, sending) but not their intake,
// as with a collector on another machine.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import autocannon, { type Options, type Result } from 'autocannon'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { login, SERVER_URL, resetDatabase, seed, startApi, waitForQuietDatabase, type RunningApi } from './harness.js'

interface Variant { name: 'off' | 'metrics' | 'traces', api?: RunningApi, env: Record<string, string> }

function cannon (options: Options): Promise<Result> {
  return new Promise((resolve, reject) => autocannon(options, (error, result) => error ? reject(error) : resolve(result)))
}

/** An OTLP/HTTP receiver that reads each export and answers 200, counting the spans' bytes. */
async function startSink () {
  let bytes = 0
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => { bytes += chunk.length }).on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get bytes () { return bytes },
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/**
 * The cost of the metrics alone, where the machine's load cannot tell the two sides apart: two
 * apps in this one process (metrics off, metrics on), each request through Fastify's inject()
 * (no socket, no load generator), in slices of `perSlice` requests that alternate between the two,
 * `slices` times. Each slice's time on one side is compared with the other's right beside it, and
 * the median of those ratios is the figure. Without the socket's share of a request the ratio is
 * an upper bound of what a real request pays. Traces cannot be measured so: their provider is
 * global to a process, so the "off" app would make spans too.
 */
export async function benchMetricsInProcess (database: string, slices = 40, perSlice = 500) {
  // Silent, and a long wait for a connection: 50 requests at a time on each of two apps in one
  // process on a busy machine once waited out the default second (503s, not a measurement).
  const base = { NODE_ENV: 'test', LOG_LEVEL: 'silent', DB_CONNECT_TIMEOUT: '10s', JWT_SECRET: 'benchmark-secret-benchmark-secret-benchmark!', DATABASE_URL: `${SERVER_URL}/${database}`,
    RATE_LIMIT_AUTH: '0', RATE_LIMIT_REFRESH: '0', RATE_LIMIT_GLOBAL: '0', LOGIN_MAX_FAILURES: '0' }
  const off = await buildApp(loadConfig(base))
  const on = await buildApp(loadConfig({ ...base, METRICS_TOKEN: 'benchmark-metrics-token-benchmark-metrics!' }))
  try {
    const { access_token: token } = (await off.inject({ method: 'POST', url: '/login', payload: { email: 'user2@bench.test', password: 'bench-password' } })).json() as { access_token: string }
    const auth = { authorization: `Bearer ${token}` }
    const lines = ['| scenario (in-process, inject) | µs a request: off | metrics | metrics / off (median of slices) |', '| --- | ---: | ---: | ---: |']
    for (const [name, request] of [
      ['GET /health', () => ({ method: 'GET' as const, url: '/health' })],
      ['GET /me', () => ({ method: 'GET' as const, url: '/me', headers: auth })],
      ['GET /boards/:id', () => ({ method: 'GET' as const, url: `/boards/${1 + Math.floor(Math.random() * 100_000)}`, headers: auth })],
    ] as const) {
      // perSlice requests, 50 at a time (as the other scenarios' 50 connections): milliseconds.
      const slice = async (app: typeof off) => {
        const started = performance.now()
        for (let done = 0; done < perSlice; done += 50) {
          for (const response of await Promise.all(Array.from({ length: 50 }, () => app.inject(request())))) {
            if (response.statusCode >= 400 && response.statusCode !== 404) throw new Error(`${name}: ${response.statusCode} ${response.body}`)
          }
        }
        return performance.now() - started
      }
      await slice(off)
      await slice(on)
      const ratios: number[] = []
      const times = { off: [] as number[], on: [] as number[] }
      for (let i = 0; i < slices; i++) {
        // Alternate which side goes first, so neither always follows the other's garbage.
        const [first, second] = i % 2 === 0 ? [off, on] : [on, off]
        const a = await slice(first)
        const b = await slice(second)
        const [offMs, onMs] = first === off ? [a, b] : [b, a]
        times.off.push(offMs)
        times.on.push(onMs)
        ratios.push(onMs / offMs)
      }
      const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!
      lines.push(`| ${name} | ${(median(times.off) / perSlice * 1000).toFixed(0)} | ${(median(times.on) / perSlice * 1000).toFixed(0)} | ${median(ratios).toFixed(3)} |`)
    }
    console.log(`\n${lines.join('\n')}`)
  } finally {
    await off.close()
    await on.close()
  }
}

export async function benchTelemetry ({ duration, connections, rounds, database }: { duration: number, connections: number, rounds: number, database: string }) {
  const USERS = 1000
  const BOARDS = 100_000
  console.error(`seeding ${database}: ${USERS} users, ${BOARDS} boards`)
  await resetDatabase(database)
  const sink = await startSink()
  const variants: Variant[] = [
    { name: 'off', env: {} },
    { name: 'metrics', env: { METRICS_TOKEN: 'benchmark-metrics-token-benchmark-metrics!' } },
    { name: 'traces', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'always_on' } },
  ]
  // One at a time: the first migrates the database, then the seed, then the other two.
  variants[0]!.api = await startApi(database, variants[0]!.env)
  await seed(database, { users: USERS, boards: BOARDS })
  for (const variant of variants.slice(1)) variant.api = await startApi(database, variant.env)
  await waitForQuietDatabase()
  try {
    // Same JWT_SECRET in every process (harness.ts): a token from one is good on the others.
    const session = await login(variants[0]!.api!.url, 'user1@bench.test')
    const auth = { authorization: `Bearer ${session.access_token}` }
    const randomBoard = () => 1 + Math.floor(Math.random() * BOARDS)
    const scenarios: Array<{ name: string, options: (url: string) => Options }> = [
      { name: 'GET /health', options: (url) => ({ url: `${url}/health` }) },
      { name: 'GET /me', options: (url) => ({ url: `${url}/me`, headers: auth }) },
      {
        name: 'GET /boards/:id',
        options: (url) => ({ url, headers: auth, requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: `/boards/${randomBoard()}` }) }] }),
      },
      { name: 'GET /boards?limit=20', options: (url) => ({ url: `${url}/boards?limit=20`, headers: auth }) },
      {
        name: 'POST /boards',
        options: (url) => ({ url: `${url}/boards`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Benchmark board', content: 'Written by npm run bench.' }) }),
      },
    ]
    interface Run { requestsPerSecond: number, cpuMsPerRequest: number }
    const results = new Map<string, Record<Variant['name'], Run[]>>()
    for (const scenario of scenarios) {
      const perVariant = { off: [] as Run[], metrics: [] as Run[], traces: [] as Run[] }
      results.set(scenario.name, perVariant)
      for (let round = 0; round < rounds; round++) {
        // The order rotates each round: none of the three is always measured first or last.
        const order = variants.map((_, i) => variants[(i + round) % variants.length]!)
        for (const variant of order) {
          const url = variant.api!.url
          await cannon({ connections, ...scenario.options(url), duration: 2 })
          const before = await variant.api!.metrics()
          const result = await cannon({ connections, ...scenario.options(url), duration })
          const after = await variant.api!.metrics()
          const run = { requestsPerSecond: result.requests.average, cpuMsPerRequest: (after.cpuMs - before.cpuMs) / result.requests.total }
          perVariant[variant.name].push(run)
          console.error(`  ${scenario.name} [${variant.name}, round ${round + 1}]: ${Math.round(run.requestsPerSecond)} req/s, ` +
            `${Math.round(run.cpuMsPerRequest * 1000)} µs CPU a request, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}`)
        }
      }
    }
    // Medians: one run caught by a burst of other work on the machine does not move them.
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const lines = [
      '| scenario | CPU µs a request: off | metrics | traces | CPU ratio: metrics / off | traces / off | req/s: off | metrics | traces | req/s ratio: metrics / off | traces / off |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for (const [name, perVariant] of results) {
      const cpu = (variant: Variant['name']) => median(perVariant[variant].map((run) => run.cpuMsPerRequest)) * 1000
      const rate = (variant: Variant['name']) => median(perVariant[variant].map((run) => run.requestsPerSecond))
      lines.push(`| ${name} | ${cpu('off').toFixed(0)} | ${cpu('metrics').toFixed(0)} | ${cpu('traces').toFixed(0)} | ` +
        `${(cpu('metrics') / cpu('off')).toFixed(2)} | ${(cpu('traces') / cpu('off')).toFixed(2)} | ` +
        `${rate('off').toFixed(0)} | ${rate('metrics').toFixed(0)} | ${rate('traces').toFixed(0)} | ` +
        `${(rate('metrics') / rate('off')).toFixed(2)} | ${(rate('traces') / rate('off')).toFixed(2)} |`)
    }
    console.log(lines.join('\n'))
    const memory = await Promise.all(variants.map(async (variant) => `${variant.name} ${(await variant.api!.metrics()).rssPeakMb.toFixed(0)} MB`))
    console.log(`\npeak RSS of each API process: ${memory.join(', ')}; ${(sink.bytes / 2 ** 20).toFixed(1)} MiB of spans exported (OTLP/HTTP JSON)`)
  } finally {
    for (const variant of variants) await variant.api?.stop()
    await sink.close()
  }
  await benchMetricsInProcess(database)
}
