// POST /password/forgot must not tell known emails from unknown ones by its timing (API.md §10):
// the medians of 50 requests each must be within 10 %. The API runs as in production, with a
// real SMTP server on loopback, so a known email really issues a token and sends a mail (after
// the reply). Known and unknown requests alternate, one at a time, so both see the same machine.
// A measurement, not a test: a noisy machine may move it, which is why it is not in `npm test`.
import { performance } from 'node:perf_hooks'
import { SMTPServer } from 'smtp-server'
import { resetDatabase, seed, startApi } from './harness.js'

const DATABASE = 'boardkit_bench_forgot'
const REQUESTS = Number(process.env.REQUESTS ?? 50)
const WARM_UP = 20
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 50)

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!

let delivered = 0
const smtp = new SMTPServer({
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  logger: false,
  onData (stream, _session, callback) {
    stream.resume()
    stream.on('end', () => { delivered += 1; callback() })
  },
})
await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve))
const smtpPort = (smtp.server.address() as { port: number }).port

await resetDatabase(DATABASE)
const api = await startApi(DATABASE, { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, APP_URL: 'https://app.example.test' })
try {
  await seed(DATABASE, { users: REQUESTS + WARM_UP, boards: 0 })
  const forgot = async (email: string) => {
    // Let the previous request's mail work (token, SMTP) finish first: each request is then
    // measured on its own, not while the one before it is still sending.
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS))
    const started = performance.now()
    const response = await fetch(`${api.url}/password/forgot`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) })
    await response.arrayBuffer()
    if (response.status !== 202) throw new Error(`forgot ${email}: ${response.status}`)
    return performance.now() - started
  }
  for (let i = 1; i <= WARM_UP; i++) {
    await forgot(`user${REQUESTS + i}@bench.test`)
    await forgot(`nobody${REQUESTS + i}@bench.test`)
  }
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 1; i <= REQUESTS; i++) {
    // Alternate which goes first, so neither always follows the other's background mail work.
    if (i % 2) {
      known.push(await forgot(`user${i}@bench.test`))
      unknown.push(await forgot(`nobody${i}@bench.test`))
    } else {
      unknown.push(await forgot(`nobody${i}@bench.test`))
      known.push(await forgot(`user${i}@bench.test`))
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const [k, u] = [median(known), median(unknown)]
  const difference = Math.abs(k - u) / Math.min(k, u)
  console.log(`POST /password/forgot, ${REQUESTS} requests each, sequential with ${PAUSE_MS} ms between them, over HTTP on 127.0.0.1`)
  console.log(`  known email:   median ${k.toFixed(3)} ms, p90 ${percentile(known, 0.9).toFixed(3)} ms`)
  console.log(`  unknown email: median ${u.toFixed(3)} ms, p90 ${percentile(unknown, 0.9).toFixed(3)} ms`)
  console.log(`  difference of the medians: ${(difference * 100).toFixed(1)} % (target: within 10 %) -> ${difference <= 0.1 ? 'PASS' : 'FAIL'}`)
  console.log(`  mails delivered to the loopback SMTP server: ${delivered} (expected ${REQUESTS + WARM_UP})`)
  process.exitCode = difference <= 0.1 ? 0 : 1
} finally {
  await api.stop()
  await resetDatabase(DATABASE)
  await new Promise<void>((resolve) => smtp.close(() => resolve()))
}
