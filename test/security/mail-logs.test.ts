import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createConnection } from 'mysql2/promise'
import t, { type Test } from 'tap'
import { freePort, SERVER_ARGS, SERVER_URL } from '../helper.js'
import { startMailServer, tokenOfLink } from '../mail-server.js'

// A reset token in a log is an account takeover for whoever reads the log (API.md §10). The real
// server (src/server.ts) runs as a child process at LOG_LEVEL=trace, so its whole output can be
// searched: buildApp() has no option for a log destination.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const APP_URL = 'https://app.example.test'
const json = { 'content-type': 'application/json' }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Server { base: string, output: () => string, stop: () => Promise<number | null> }

/** Starts src/server.ts with `env` on a database and port of its own; ready when /health answers. */
async function startServer (t: Test, env: Record<string, string>): Promise<Server> {
  const database = `boardkit_t_mlogs_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    const connection = await createConnection(SERVER_URL)
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
  })
  const port = await freePort()
  // Its own process group, so a hung server (tsx and the node it starts) can be killed by id.
  const child: ChildProcess = spawn(process.execPath, SERVER_ARGS, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'trace',
      JWT_SECRET: `mail-logs-secret-${randomBytes(24).toString('hex')}`,
      JWT_KEY_ENCRYPTION_SECRET: randomBytes(32).toString('hex'),
      DATABASE_URL: `${SERVER_URL}/${database}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      APP_URL,
      // High, not 0: production refuses limits turned off (API.md §12).
      RATE_LIMIT_AUTH: '100000',
      LOGIN_MAX_FAILURES: '100000',
      ...env,
    },
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
      await exit
    }
  })
  const base = `http://127.0.0.1:${port}`
  const started = Date.now()
  for (;;) {
    if (child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`the server did not start: ${output}`)
    try {
      if ((await fetch(`${base}/health`)).status === 200) break
    } catch { /* not listening yet */ }
    await sleep(100)
  }
  return {
    base,
    output: () => output,
    async stop () {
      process.kill(child.pid!, 'SIGTERM')
      return Promise.race([exit, sleep(20_000).then(() => null)])
    },
  }
}

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { ...json, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })

const logLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)

t.test('production with SMTP: no token reaches the log at any level', async (t) => {
  // The first mail is refused (451), so the failure-and-retry lines are in the log too.
  const smtp = await startMailServer(t, { refuseFirst: 1 })
  const server = await startServer(t, { NODE_ENV: 'production', SMTP_URL: smtp.url, OUTBOX_RETRY_BASE: '100ms' })
  const email = `mail-logs-${randomBytes(4).toString('hex')}@example.com`
  const password = `pw-${randomBytes(12).toString('hex')}`
  const secrets: Array<[string, string]> = []
  const keep = (what: string, token: string) => {
    const selector = Buffer.from(token, 'base64url').subarray(0, 16).toString('hex')
    secrets.push([what, token], [`${what}'s selector`, selector], [`${what}'s secret half`, token.slice(22)])
  }

  t.equal((await post(server.base, '/register', { email, name: 'Mail Logs', password })).status, 201, 'register')
  const verification = await smtp.waitForMail((m) => m.to.includes(email) && /confirm/i.test(m.subject))
  const verificationToken = tokenOfLink(verification.text, APP_URL, '/verify-email')!
  keep('the verification token', verificationToken)
  t.equal((await post(server.base, '/email/verify', { token: verificationToken })).status, 204, 'verify')
  t.equal((await post(server.base, '/email/verify', { token: verificationToken })).status, 400, 'verify again: refused')

  t.equal((await post(server.base, '/password/forgot', { email })).status, 202, 'forgot')
  const reset = await smtp.waitForMail((m) => m.to.includes(email) && /reset/i.test(m.subject))
  const resetToken = tokenOfLink(reset.text, APP_URL, '/reset-password')!
  keep('the reset token', resetToken)
  const newPassword = `new-${randomBytes(12).toString('hex')}`
  t.equal((await post(server.base, '/password/reset', { token: resetToken, new_password: newPassword })).status, 204, 'reset')
  t.equal((await post(server.base, '/password/reset', { token: resetToken, new_password: newPassword })).status, 400, 'reset again: refused')
  t.equal((await post(server.base, '/login', { email, password: newPassword })).status, 200, 'login with the new password')
  secrets.push(['the password', password], ['the new password', newPassword])

  t.equal(await server.stop(), 0, 'the server stops on SIGTERM with exit code 0')
  const output = server.output()
  const lines = logLines(output)
  // The log is there and is about these requests, so the absence checks below can fail.
  t.ok(lines.some((line) => line.msg === 'outbox: delivery failed; will retry'), 'the refused delivery was logged')
  t.ok(lines.filter((line) => line.msg === 'outbox: delivered').length >= 2, 'the deliveries were logged')
  t.ok(lines.some((line) => (line.req as { url?: string } | undefined)?.url === '/password/reset'), 'the reset request was logged')
  for (const [what, secret] of secrets) t.notOk(output.includes(secret), `${what} is not in the log`)
  t.notMatch(output, /#token=/, 'no mailed link in the log')
})

t.test('production without SMTP_URL: nothing is sent, a warning without any token is logged', async (t) => {
  const server = await startServer(t, { NODE_ENV: 'production' })
  const email = `no-smtp-${randomBytes(4).toString('hex')}@example.com`
  t.equal((await post(server.base, '/register', { email, name: 'No SMTP', password: 'correct horse battery' })).status, 201)
  t.equal((await post(server.base, '/password/forgot', { email })).status, 202, 'forgot still answers 202')
  await sleep(500)
  t.equal(await server.stop(), 0)
  const lines = logLines(server.output())
  t.ok(lines.some((line) => line.level === 40 && /SMTP_URL is not set/.test(String(line.msg))), 'a warning at start-up')
  const notSent = lines.filter((line) => line.msg === 'mail not sent: SMTP_URL is not set')
  t.ok(notSent.some((line) => line.kind === 'password_reset'), 'a warning for the reset mail')
  t.ok(notSent.every((line) => line.level === 40), 'at level warn')
  t.notMatch(server.output(), /token=|reset-password|verify-email/, 'no link or token in the log')
})

t.test('development without SMTP_URL: the mail is written to the log instead', async (t) => {
  const server = await startServer(t, { NODE_ENV: 'development', LOG_LEVEL: 'info' })
  const email = `dev-${randomBytes(4).toString('hex')}@example.com`
  t.equal((await post(server.base, '/register', { email, name: 'Dev', password: 'correct horse battery' })).status, 201)
  t.equal((await post(server.base, '/password/forgot', { email })).status, 202)
  await sleep(500)
  t.equal(await server.stop(), 0)
  const mails = logLines(server.output()).filter((line) => line.mail !== undefined).map((line) => line.mail as { to: string, subject: string, text: string })
  const reset = mails.find((mail) => /reset/i.test(mail.subject))
  t.equal(reset?.to, email, 'the reset mail is in the log, to the account\'s address')
  t.ok(tokenOfLink(reset?.text ?? '', APP_URL, '/reset-password'), 'with its link, so development needs no mail server')
})
