import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { request } from 'node:http'
import t from 'tap'
import { build } from '../helper.js'

// A body over the 64 KiB limit is a 413 payload_too_large, and the client gets to read it even
// though it is still sending when the server has decided: the rest of the body is read and
// thrown away first (within BODY_DISCARD_LIMIT and BODY_DISCARD_TIMEOUT). Tried with the
// clients people use, on a real socket, five times each: before, Node's fetch and http
// clients failed with EPIPE in 4 of 5 tries.

const BODY = Buffer.alloc(12 * 1024 * 1024, 'a')
const TRIES = 5

interface Result { status?: number, code?: string, error?: string }

async function withFetch (url: string): Promise<Result> {
  try {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY })
    return { status: response.status, code: (await response.json() as { code?: string }).code }
  } catch (error) {
    const cause = (error as { cause?: { code?: string, message?: string } }).cause
    return { error: cause?.code ?? cause?.message ?? String(error) }
  }
}

function withNodeHttp (url: string): Promise<Result> {
  return new Promise((resolve) => {
    const outgoing = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': BODY.length } }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode, code: JSON.parse(text).code }))
      response.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
    })
    outgoing.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
    outgoing.end(BODY)
  })
}

function withCurl (url: string): Promise<Result> {
  return new Promise((resolve) => {
    const curl = spawn('curl', ['-sS', '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '@-',
      '-w', '\n%{http_code}', url], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    let errors = ''
    curl.stdout.on('data', (chunk) => { output += chunk })
    curl.stderr.on('data', (chunk) => { errors += chunk })
    curl.stdin.on('error', () => {})
    curl.on('close', (exitCode) => {
      const [body, status] = output.split('\n')
      if (exitCode !== 0) return resolve({ error: `curl exit ${exitCode}: ${errors.trim()}`, status: Number(status) })
      try {
        resolve({ status: Number(status), code: JSON.parse(body!).code })
      } catch {
        resolve({ error: `unparsable: ${output.slice(0, 200)}` })
      }
    })
    curl.stdin.end(BODY)
  })
}

t.test('a 12 MiB body: every client reads its 413 payload_too_large', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/register`
  const clients = { fetch: withFetch, 'node:http': withNodeHttp, curl: withCurl }
  const summary: Record<string, string[]> = {}
  for (const [name, send] of Object.entries(clients)) {
    const results: Result[] = []
    for (let i = 0; i < TRIES; i++) results.push(await send(url))
    summary[name] = results.map((r) => r.error ?? `${r.status} ${r.code}`)
    t.same(results, Array(TRIES).fill({ status: 413, code: 'payload_too_large' }), `${name}: 413 payload_too_large, ${TRIES} of ${TRIES}`)
  }
  t.comment(`413 per client: ${JSON.stringify(summary)}`)
})

t.test('a client that never finishes its body is cut off after BODY_DISCARD_TIMEOUT, with its 413', async (t) => {
  const app = await build(t, { BODY_DISCARD_TIMEOUT: '300ms' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  let received = ''
  socket.on('data', (chunk) => { received += chunk })
  // Declares 100 MiB and trickles it: neither the byte bound nor the body's end is reached.
  socket.write('POST /register HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n')
  const trickle = setInterval(() => socket.write('a'.repeat(1024)), 20)
  const started = Date.now()
  await new Promise((resolve) => socket.once('close', resolve))
  clearInterval(trickle)
  const ms = Date.now() - started
  t.match(received, /^HTTP\/1\.1 413 /, 'the client got the 413')
  t.match(received, /connection: close/i, 'with Connection: close')
  t.match(received, /"code":"payload_too_large"/)
  // A hang guard: the bound is 300 ms here; without it the connection stays open for as long
  // as the client keeps sending (tap would time out).
  t.ok(ms < 5000, `the connection was closed after ${ms} ms`)
})

t.test('BODY_DISCARD_LIMIT=0 answers at once, without reading the body', async (t) => {
  const app = await build(t, { BODY_DISCARD_LIMIT: '0' })
  const response = await app.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/json' }, payload: BODY })
  t.equal(response.statusCode, 413)
  t.equal(response.json().code, 'payload_too_large')
})
