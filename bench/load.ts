// npm run load [-- --duration 30 --connections 20]
// A mixed workload against the API in its own process on 127.0.0.1: each connection plays a
// user who logs in, reads, writes, refreshes and logs out, over and over, for a fixed time.
// Reports requests, non-2xx by status and any 5xx; exits 1 on a 5xx or an unexpected status.
import { parseArgs } from 'node:util'
import autocannon, { type Request, type Result } from 'autocannon'
import { PASSWORD, resetDatabase, seed, startApi } from './harness.js'

const { values: args } = parseArgs({
  options: { duration: { type: 'string', default: '30' }, connections: { type: 'string', default: '20' } },
})
const DATABASE = 'boardkit_load'
const USERS = 200
const JSON_BODY = { 'content-type': 'application/json' }

interface Flow { access?: string, refresh?: string, boardId?: number }

const bearer = (token?: string) => ({ authorization: `Bearer ${token}` })
const bearerJson = (token?: string) => ({ ...JSON_BODY, ...bearer(token) })
const json = (body: string) => JSON.parse(body) as Record<string, unknown>

// One user's session, in order. Each step sets its request from what the previous ones kept.
const steps: Request[] = [
  {
    method: 'POST', path: '/login', headers: JSON_BODY,
    setupRequest: (request) => ({ ...request, body: JSON.stringify({ email: `user${1 + Math.floor(Math.random() * USERS)}@bench.test`, password: PASSWORD }) }),
    onResponse: (status, body, context: Flow) => { if (status === 200) Object.assign(context, { access: json(body).access_token, refresh: json(body).refresh_token }) },
  },
  { method: 'GET', path: '/me', setupRequest: (request, context: Flow) => ({ ...request, headers: bearer(context.access) }) },
  { method: 'GET', path: '/boards?limit=20', setupRequest: (request, context: Flow) => ({ ...request, headers: bearer(context.access) }) },
  {
    method: 'POST', path: '/boards',
    setupRequest: (request, context: Flow) => ({ ...request, headers: bearerJson(context.access), body: JSON.stringify({ title: 'Load test', content: 'Written by npm run load.' }) }),
    onResponse: (status, body, context: Flow) => { if (status === 201) context.boardId = Number(json(body).id) },
  },
  { method: 'GET', setupRequest: (request, context: Flow) => ({ ...request, path: `/boards/${context.boardId}`, headers: bearer(context.access) }) },
  {
    method: 'PATCH',
    setupRequest: (request, context: Flow) => ({ ...request, path: `/boards/${context.boardId}`, headers: bearerJson(context.access), body: JSON.stringify({ title: 'Edited by load' }) }),
  },
  {
    method: 'POST', path: '/refresh',
    setupRequest: (request, context: Flow) => ({ ...request, headers: bearer(context.refresh) }),
    onResponse: (status, body, context: Flow) => { if (status === 200) Object.assign(context, { access: json(body).access_token, refresh: json(body).refresh_token }) },
  },
  { method: 'GET', path: '/boards?limit=5', setupRequest: (request, context: Flow) => ({ ...request, headers: bearer(context.access) }) },
  { method: 'DELETE', setupRequest: (request, context: Flow) => ({ ...request, path: `/boards/${context.boardId}`, headers: bearer(context.access) }) },
  { method: 'POST', path: '/logout', setupRequest: (request, context: Flow) => ({ ...request, headers: bearer(context.access) }) },
]

async function main () {
  await resetDatabase(DATABASE)
  const api = await startApi(DATABASE)
  try {
    await seed(DATABASE, { users: USERS, boards: 10_000 })
    console.error(`load: ${args.duration} s, ${args.connections} connections, ${api.url}`)
    const result = await new Promise<Result>((resolve, reject) => autocannon({
      url: api.url, duration: Number(args.duration), connections: Number(args.connections), requests: steps,
    }, (error, outcome) => error ? reject(error) : resolve(outcome)))
    const metrics = await api.metrics()

    const byStatus = Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [Number(status), Number(count)] as const)
    const serverErrors = byStatus.filter(([status]) => status >= 500).reduce((sum, [, count]) => sum + count, 0)
    const unexpected = byStatus.filter(([status]) => ![200, 201, 204].includes(status))
    console.log(`requests: ${result.requests.total} (${Math.round(result.requests.average)}/s), latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`)
    console.log(`by status: ${byStatus.map(([status, count]) => `${status}: ${count}`).join(', ')}`)
    console.log(`non-2xx: ${result.non2xx}, 5xx: ${serverErrors}, connection errors: ${result.errors}, timeouts: ${result.timeouts}`)
    console.log(`API process: peak RSS ${metrics.rssPeakMb.toFixed(0)} MB, event-loop delay p99 ${metrics.eventLoopDelayP99Ms.toFixed(1)} ms`)
    if (serverErrors > 0 || unexpected.length > 0 || result.errors > 0) {
      console.log(`FAIL: ${unexpected.map(([status, count]) => `${count} × ${status}`).join(', ') || 'connection errors'}`)
      process.exitCode = 1
    } else {
      console.log('OK: zero 5xx and zero unexpected statuses')
    }
  } finally {
    await api.stop()
  }
}

await main()
