import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection } from 'mysql2/promise'
import t, { type Test } from 'tap'
import { freePort, REPO_ROOT, SERVER_ARGS, SERVER_URL, TEST_SECRET } from '../helper.js'
import { startMailServer } from '../mail-server.js'
import { TRACES_SAMPLERS } from '../../src/config.js'

// Traces (API.md §18) from the real server process (src/server.ts, which alone decides whether
// the SDK is loaded), exported by OTLP/HTTP with JSON bodies to a receiver started here.
// test/ops/module-probe.mjs records every module the process loads.

const PROBE = ['--import', String(new URL('./module-probe.mjs', import.meta.url))]
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes?: Array<{ key: string, value: Record<string, unknown> }>
}
const SERVER = 2 // OTLP's SPAN_KIND_SERVER
const CLIENT = 3 // SPAN_KIND_CLIENT
const attribute = (span: OtlpSpan, key: string) => Object.values(span.attributes?.find((entry) => entry.key === key)?.value ?? {})[0]

/** An OTLP/HTTP receiver: keeps the spans of every POST /v1/traces (JSON), answers 200. */
async function startReceiver (t: Test) {
  const spans: OtlpSpan[] = []
  const contentTypes = new Set<string>()
  const server = createServer((request: IncomingMessage, response) => {
    let body = ''
    request.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
      contentTypes.add(String(request.headers['content-type']))
      if (request.method === 'POST' && request.url === '/v1/traces') {
        const payload = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
        for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes }
}

/** The real server on its own database and port, its JSON log lines kept; stopped (SIGTERM) by `stop`. */
async function startServer (t: Test, env: Record<string, string>) {
  const database = `boardkit_t_otel_${randomBytes(4).toString('hex')}`
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'boardkit-probe-'))
  const probeFile = join(dir, 'modules.txt')
  t.teardown(async () => {
    rmSync(dir, { recursive: true, force: true })
    const connection = await createConnection(SERVER_URL)
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
  })
  const child: ChildProcess = spawn(process.execPath, [...SERVER_ARGS.slice(0, -1), ...PROBE, SERVER_ARGS.at(-1)!], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'info', JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', PORT: String(port),
      DATABASE_URL: `${SERVER_URL}/${database}`, MODULE_PROBE_FILE: probeFile, RATE_LIMIT_AUTH: '0', LOGIN_MAX_FAILURES: '0', ...env,
    },
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const base = `http://127.0.0.1:${port}`
  for (const deadline = Date.now() + 60_000; ;) {
    if (await fetch(`${base}/health`).then((response) => response.ok, () => false)) break
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${output}`)
    await sleep(100)
  }
  return {
    base,
    /** SIGTERM, as a process manager stops it; resolves to the modules it loaded. */
    async stop (): Promise<string[]> {
      child.kill('SIGTERM')
      await exited
      return readFileSync(probeFile, 'utf8').split('\n')
    },
    logLines: () => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>),
  }
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
const isSdk = (url: string) => /\/src\/telemetry\.ts$|@opentelemetry\/(sdk-|exporter-|otlp-|resources|core|context-async-hooks)/.test(url)

t.test('OTEL_TRACES_SAMPLER and its argument make the samplers of the specification', async (t) => {
  // Imported here, in the test's own process: the server processes below are the ones probed.
  const { samplerOf } = await import('../../src/telemetry.js')
  const described = (name: typeof TRACES_SAMPLERS[number], ratio = 1) => samplerOf({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: ratio }).toString()
  t.equal(described('always_on'), 'AlwaysOnSampler')
  t.equal(described('always_off'), 'AlwaysOffSampler')
  t.equal(described('traceidratio', 0.25), 'TraceIdRatioBased{0.25}')
  t.match(described('parentbased_always_on'), /^ParentBased\{root=AlwaysOnSampler/)
  t.match(described('parentbased_always_off'), /^ParentBased\{root=AlwaysOffSampler/)
  t.match(described('parentbased_traceidratio', 0.1), /^ParentBased\{root=TraceIdRatioBased\{0\.1\}/)
  t.equal(TRACES_SAMPLERS.length, 6, 'every name the configuration accepts is covered above')
})

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing of the OpenTelemetry SDK is loaded', async (t) => {
  const server = await startServer(t, {})
  // Traffic that runs every path that makes a span: statements, argon2, the error handler.
  const email = `probe-${randomBytes(4).toString('hex')}@example.com`
  t.equal((await fetch(`${server.base}/register`, json({ email, name: 'Probe', password: 'correct horse battery' }))).status, 201)
  t.equal((await fetch(`${server.base}/login`, json({ email, password: 'correct horse battery' }))).status, 200)
  t.ok(server.logLines().every((line) => !('trace_id' in line)), 'no log line carries a trace_id')
  const modules = await server.stop()
  t.ok(modules.some((url) => url.includes('/src/app.ts')), 'the probe saw the application load')
  t.same(modules.filter(isSdk), [], 'no SDK module, no exporter, no src/telemetry.ts')
})

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT: spans by OTLP/HTTP JSON, a tree per request, traceparent continued, trace_id in the log', async (t) => {
  const receiver = await startReceiver(t)
  const mail = await startMailServer(t)
  const server = await startServer(t, {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_SERVICE_NAME: 'boardkit-test',
    SMTP_URL: mail.url,
    // The per-IP limit counted in Redis: each request's rate-limit check is a Redis command.
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `boardkit-test-otel-${randomBytes(4).toString('hex')}:`,
    RATE_LIMIT_GLOBAL: '1000',
  })
  const email = `otel-${randomBytes(4).toString('hex')}@example.com`
  t.equal((await fetch(`${server.base}/register`, json({ email, name: 'Traced', password: 'correct horse battery' }))).status, 201)
  const login = await fetch(`${server.base}/login`, json({ email, password: 'correct horse battery' }))
  const { access_token: token } = await login.json() as { access_token: string }
  const created = await fetch(`${server.base}/boards`, { ...json({ title: 'Traced', content: 'x' }), headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } })
  const { id } = await created.json() as { id: number }

  // The caller's trace: W3C traceparent (version, trace id, parent span id, sampled).
  const traceId = randomBytes(16).toString('hex')
  const callerSpanId = randomBytes(8).toString('hex')
  const read = await fetch(`${server.base}/boards/${id}`, {
    headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${callerSpanId}-01`, 'x-request-id': 'traced-read' },
  })
  t.equal(read.status, 200)
  await mail.waitForMail((received) => received.to.includes(email))

  // Spans are exported every 100 ms; the rest at shutdown.
  for (const deadline = Date.now() + 10_000; !receiver.spans.some((span) => span.traceId === traceId && span.kind === SERVER) && Date.now() < deadline;) await sleep(100)
  const logLines = server.logLines()
  await server.stop()

  t.same([...receiver.contentTypes], ['application/json'], 'OTLP/HTTP with JSON bodies')
  const root = receiver.spans.find((span) => span.traceId === traceId && span.kind === SERVER)
  t.ok(root, 'the server span of GET /boards/:id arrived')
  if (!root) return
  t.equal(root.name, 'GET /boards/:id', 'named by its route template, not the URL')
  t.equal(attribute(root, 'http.route'), '/boards/:id')
  t.equal(Number(attribute(root, 'http.response.status_code')), 200)
  t.equal(root.parentSpanId, callerSpanId, 'a child of the caller\'s span: the traceparent is continued')
  const children = receiver.spans.filter((span) => span.parentSpanId === root.spanId)
  t.same(children.map((span) => span.name).sort(), ['SELECT', 'SELECT', 'redis EVALSHA'],
    'its children: the rate-limit count in Redis, the token check, the board read', { children })
  for (const child of children) t.equal(child.kind, CLIENT, `${child.name}: a client span`)
  const statements = children.filter((span) => span.name === 'SELECT')
  t.ok(statements.some((span) => /FROM \(SELECT \? AS i/.test(String(attribute(span, 'db.query.text')))), 'one is the token check, with its text and no value')
  t.ok(statements.some((span) => /from `boards`|FROM boards/i.test(String(attribute(span, 'db.query.text')))), 'one reads the board')
  t.ok(receiver.spans.every((span) => !JSON.stringify(span).includes(email)), 'no span carries the email')
  // The outbox worker polled every second meanwhile: its statements belong to no request.
  const orphans = receiver.spans.filter((span) => attribute(span, 'db.system.name') === 'mysql' && !span.parentSpanId)
  t.same(orphans.map((span) => span.name), [], 'no statement makes a trace of its own')

  const spanNamed = (name: string) => receiver.spans.find((span) => span.name === name)
  const loginSpan = spanNamed('POST /login')
  t.ok(loginSpan, 'a server span for POST /login')
  t.ok(receiver.spans.some((span) => span.name === 'argon2 verify' && span.parentSpanId === loginSpan?.spanId), 'argon2 verify is a child of the login')
  t.ok(receiver.spans.some((span) => span.name === 'argon2 hash' && span.parentSpanId === spanNamed('POST /register')?.spanId), 'argon2 hash is a child of the register')
  const smtp = spanNamed('smtp send')
  t.ok(smtp, 'the verification mail\'s delivery has a span')
  t.equal(receiver.spans.find((span) => span.spanId === smtp?.parentSpanId)?.traceId, spanNamed('POST /register')?.traceId, '…in the trace of the register that queued it')
  t.ok(receiver.spans.some((span) => span.name === 'INSERT' && span.parentSpanId === spanNamed('POST /boards')?.spanId), 'the board\'s INSERT is a child of POST /boards')

  const lines = logLines.filter((line) => line.reqId === 'traced-read')
  t.ok(lines.length >= 2, 'the request logged its lines (incoming, completed)')
  t.ok(lines.every((line) => line.trace_id === traceId), 'every log line of the request carries its trace_id', { lines })
})
