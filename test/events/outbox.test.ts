import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { build, createTestDatabase, freePort, newUser, REPO_ROOT, SERVER_ARGS, TEST_SECRET } from '../helper.js'
import { startMailServer } from '../mail-server.js'

// API.md §15: mail and webhooks leave through the outbox table. Against a real SMTP server and a
// real HTTP receiver: an outage, a killed process and two instances draining one table lose no
// mail and send none twice; a webhook refused for a while arrives, signed, in order.

const APP_URL = 'http://127.0.0.1:3000'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const started = Date.now()
  while (!await check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const duplicates = (ids: string[]) => ids.length - new Set(ids).size

t.test('SMTP refusing for a while, then back: every mail delivered, once', async (t) => {
  const port = await freePort()
  const smtp = await startMailServer(t, { port, listening: false })
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL, OUTBOX_RETRY_BASE: '100ms', OUTBOX_POLL_INTERVAL: '100ms' })
  const requested = 30
  const emails: string[] = []
  for (let i = 0; i < requested; i++) {
    const body = newUser()
    emails.push(body.email)
    // Straight into the table (no argon2): the users the mails are for.
    await app.pool.query("INSERT INTO users (email, name, password_hash, email_verified_at) VALUES (?, 'Outage', 'x', NOW(3))", [body.email])
  }
  for (const email of emails) t.equal((await app.inject({ method: 'POST', url: '/password/forgot', payload: { email } })).statusCode, 202)
  await sleep(1000)
  t.equal(smtp.mails.length, 0, 'nothing could be delivered while the server was down')
  await smtp.listen()
  await until('every mail', () => smtp.mails.length >= requested)
  await sleep(500)
  const ids = smtp.mails.map((mail) => mail.messageId)
  t.equal(smtp.mails.length, requested, `${requested} requested, ${smtp.mails.length} delivered`)
  t.equal(duplicates(ids), 0, 'none twice')
  t.same(new Set(smtp.mails.flatMap((mail) => mail.to)), new Set(emails), 'each to its address')
  t.comment(`SMTP outage: requested ${requested}, delivered ${smtp.mails.length}, duplicated ${duplicates(ids)}`)
})

t.test('the API killed with SIGKILL right after 202: the mail arrives after a restart', async (t) => {
  const smtpPort = await freePort()
  const smtp = await startMailServer(t, { port: smtpPort, listening: false })
  const DATABASE_URL = await createTestDatabase(t)
  const email = newUser().email
  const start = async () => {
    const port = await freePort()
    const child = spawn(process.execPath, SERVER_ARGS, {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'warn', JWT_SECRET: TEST_SECRET, DATABASE_URL, HOST: '127.0.0.1', PORT: String(port), SMTP_URL: smtp.url, APP_URL, OUTBOX_LEASE: '2s', OUTBOX_RETRY_BASE: '100ms', OUTBOX_POLL_INTERVAL: '100ms', RATE_LIMIT_AUTH: '0', RATE_LIMIT_GLOBAL: '0', RATE_LIMIT_REFRESH: '0', LOGIN_MAX_FAILURES: '0' },
      stdio: 'ignore',
    })
    t.teardown(() => { child.kill('SIGKILL') })
    const base = `http://127.0.0.1:${port}`
    await until('the server', async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 60_000)
    return { child, base }
  }
  const first = await start()
  const post = (base: string, path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal((await post(first.base, '/register', { email, name: 'Killed', password: 'correct horse battery' })).status, 201)
  t.equal((await post(first.base, '/password/forgot', { email })).status, 202, '202')
  first.child.kill('SIGKILL')
  await new Promise((resolve) => first.child.once('exit', resolve))
  await smtp.listen()
  await start()
  await until('both mails', () => smtp.mails.length >= 2)
  await sleep(500)
  t.same(smtp.mails.map((mail) => mail.subject.replace(/ .*/, '')).sort(), ['Confirm', 'Reset'], 'the verification and the reset mail, each once')
  t.equal(duplicates(smtp.mails.map((mail) => mail.messageId)), 0)
})

t.test('two instances draining one outbox: 200 mails, none twice', async (t) => {
  const smtp = await startMailServer(t)
  const DATABASE_URL = await createTestDatabase(t)
  const settings = { DATABASE_URL, SMTP_URL: smtp.url, APP_URL, OUTBOX_POLL_INTERVAL: '20ms' }
  const [a, b] = [await build(t, settings), await build(t, settings)]
  const mails = 200
  // 200 unverified users, each owed a verification mail, written as a request would write them.
  await a.pool.query(`INSERT INTO users (email, name, password_hash) SELECT CONCAT('drain', seq, '@example.com'), 'Drain', 'x' FROM seq_1_to_${mails}`)
  await a.pool.query("INSERT INTO outbox (kind, user_id) SELECT 'email_verification', id FROM users")
  a.outbox.kick()
  b.outbox.kick()
  await until('every mail', () => smtp.mails.length >= mails, 60_000)
  await sleep(500)
  const ids = smtp.mails.map((mail) => mail.messageId)
  t.equal(smtp.mails.length, mails, `${mails} queued, ${smtp.mails.length} delivered`)
  t.equal(duplicates(ids), 0, 'none twice')
  const [rows] = await a.pool.query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'sent' AND payload IS NULL") as unknown as [Array<{ n: number }>]
  t.equal(Number(rows[0]!.n), mails, 'every row sent, its sealed mail removed')
  t.comment(`two instances: queued ${mails}, delivered ${smtp.mails.length}, duplicated ${duplicates(ids)}`)
})

t.test('webhooks: a receiver answering 500 then 200 gets every event, signed, in order per user', async (t) => {
  const secret = `whsec_${Buffer.from('a webhook secret of thirty-two b').toString('base64')}`
  const received: Array<{ headers: IncomingMessage['headers'], body: string }> = []
  let refuse = 3
  const receiver = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => { body += chunk })
    request.on('end', () => {
      if (refuse > 0) {
        refuse -= 1
        response.writeHead(500).end()
        return
      }
      received.push({ headers: request.headers, body })
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())))
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`
  const app = await build(t, { WEBHOOK_URL: url, WEBHOOK_SECRET: secret, OUTBOX_RETRY_BASE: '100ms', OUTBOX_POLL_INTERVAL: '100ms' })

  const body = newUser()
  const registered = await app.inject({ method: 'POST', url: '/register', payload: body })
  const userId = registered.json().id
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })).statusCode, 200)
  await until('four webhooks', () => received.length >= 4)
  await sleep(300)

  const verifier = new Webhook(secret)
  const messages = received.map(({ headers, body }) => verifier.verify(body, headers as Record<string, string>) as { type: string, data: { id: number, subject_user_id: number } })
  t.equal(messages.length, 4, 'each event once, after three refusals')
  t.same(messages.map((message) => message.type), ['user.registered', 'login.succeeded', 'login.succeeded', 'login.succeeded'], 'in the order they happened')
  t.ok(messages.every((message) => message.data.subject_user_id === userId), 'about the user')
  t.same(received.map(({ headers }) => headers['webhook-id']), messages.map((message) => `evt_${message.data.id}`), 'the webhook-id is the event\'s: a receiver can drop a repeat')
  t.throws(() => verifier.verify(received[0]!.body.replace('user.registered', 'user.deleted'), received[0]!.headers as Record<string, string>), 'a changed body does not verify')
  t.throws(() => new Webhook(`whsec_${Buffer.from('another secret of thirty-two byt').toString('base64')}`).verify(received[0]!.body, received[0]!.headers as Record<string, string>), 'nor with another secret')
})

t.test('webhook settings are checked at start-up', async (t) => {
  const { loadConfig, ConfigError } = await import('../../src/config.js')
  t.throws(() => loadConfig({ WEBHOOK_URL: 'https://hooks.example.com' }), ConfigError, 'a URL without a secret')
  t.throws(() => loadConfig({ WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: 'c2hvcnQ=' }), ConfigError, 'a secret of 5 bytes')
  t.throws(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(48), JWT_KEY_ENCRYPTION_SECRET: 'k'.repeat(32), WEBHOOK_URL: 'http://hooks.example.com', WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}` }),
    /WEBHOOK_URL: must be https:\/\/ in production/, 'http:// in production')
  t.ok(loadConfig({ WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}` }).WEBHOOK_URL)
})

t.test('webhooks: failed logins are one message per email and minute, like their rows', async (t) => {
  const received: string[] = []
  const receiver = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => { body += chunk })
    request.on('end', () => { received.push(body); response.writeHead(200).end() })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())))
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/`
  const app = await build(t, { WEBHOOK_URL: url, WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`, OUTBOX_POLL_INTERVAL: '50ms' })
  for (let i = 0; i < 4; i++) await app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password: 'wrong password!' } })
  await until('the webhook', () => received.length >= 1)
  await sleep(300)
  // One row per minute: four quick attempts are one row (two if they straddle a minute).
  const [rows] = await app.pool.query("SELECT SUM(count) AS attempts, COUNT(*) AS n FROM security_events WHERE type = 'login.failed'") as unknown as [Array<{ attempts: number, n: number }>]
  t.equal(Number(rows[0]!.attempts), 4, 'four attempts counted')
  t.equal(received.length, Number(rows[0]!.n), 'one message per row, not per attempt')
  t.ok(received.length <= 2)
  t.match(JSON.parse(received[0]!), { type: 'login.failed', data: { details: { email: 'nobody@example.com', reason: 'unknown_email' } } })
})
