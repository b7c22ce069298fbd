import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createConnection } from 'mysql2/promise'
import t from 'tap'
import { awayFromStepEdge, freePort, REPO_ROOT, SERVER_ARGS, SERVER_URL, totpCode } from '../helper.js'

// Nothing secret reaches the log: the real server (src/server.ts) runs as a child process at
// LOG_LEVEL=trace, goes through register → login → me → refresh → logout, a failed login, and
// the second factor (setup, enable, a login with a code, a wrong code, a recovery code, new codes,
// disable), and its whole output is searched for the password, every token, the TOTP secret,
// every code and every mfa_token. buildApp() has no option
// for a log destination, so a child process is the way to capture what production would print.

const SECRET = `logs-test-secret-${randomBytes(24).toString('hex')}`
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface LogLine {
  level: number
  msg?: string
  reqId?: string
  req?: { method?: string, url?: string }
  res?: { statusCode?: number }
  [key: string]: unknown
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function exited (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

t.test('the log never contains a password or a token', async (t) => {
  const database = `boardkit_t_logs_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    const connection = await createConnection(SERVER_URL)
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
  })

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // Its own process group, so a hung server (tsx and the node it starts) can be killed by id.
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      LOG_LEVEL: 'trace',
      JWT_SECRET: SECRET,
      DATABASE_URL: `${SERVER_URL}/${database}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      RATE_LIMIT_AUTH: '0',
      LOGIN_MAX_FAILURES: '0',
    },
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exit = exited(child)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
      await exit
    }
  })

  // Ready when /health answers; give up if the process dies or takes over a minute.
  const started = Date.now()
  for (;;) {
    if (child.exitCode !== null) t.fail(`the server exited early (${child.exitCode}): ${stderr}`)
    if (child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`the server did not start: ${stderr}`)
    try {
      if ((await fetch(`${base}/health`)).status === 200) break
    } catch { /* not listening yet */ }
    await sleep(100)
  }

  const json = { 'content-type': 'application/json' }
  const auth = (token: string) => ({ authorization: `Bearer ${token}` })
  const email = `logs-${randomBytes(4).toString('hex')}@example.com`
  const password = `pw-${randomBytes(12).toString('hex')}`
  const wrongPassword = `wrong-${randomBytes(12).toString('hex')}`
  const tokens: string[] = []
  const secrets: Array<[string, string]> = [['the password', password], ['the wrong password', wrongPassword], ['JWT_SECRET', SECRET]]
  const keep = (what: string, token: string) => {
    tokens.push(token)
    const [header, payload, signature] = token.split('.')
    secrets.push([what, token], [`${what}'s signature`, signature!], [`${what}'s signing input`, `${header}.${payload}`])
  }

  const registered = await fetch(`${base}/register`, { method: 'POST', headers: json, body: JSON.stringify({ email, name: 'Log Tester', password }) })
  t.equal(registered.status, 201, 'register')

  const loggedIn = await fetch(`${base}/login`, { method: 'POST', headers: json, body: JSON.stringify({ email, password }) })
  t.equal(loggedIn.status, 200, 'login')
  const first = await loggedIn.json() as { access_token: string, refresh_token: string }
  keep('the login access token', first.access_token)
  keep('the login refresh token', first.refresh_token)

  const traced = await fetch(`${base}/me`, { headers: { ...auth(first.access_token), 'x-request-id': 'trace-me-123' } })
  t.equal(traced.status, 200, 'GET /me with x-request-id')
  t.equal(traced.headers.get('x-request-id'), 'trace-me-123', 'the incoming request id is echoed')

  const unsafeId = await fetch(`${base}/health`, { headers: { 'x-request-id': 'not a safe id; rm -rf /' } })
  t.match(unsafeId.headers.get('x-request-id') ?? '', UUID, 'an unsafe incoming request id is replaced by a UUID')

  const refreshedByHeader = await fetch(`${base}/refresh`, { method: 'POST', headers: auth(first.refresh_token) })
  t.equal(refreshedByHeader.status, 200, 'refresh with the token in the header')
  const second = await refreshedByHeader.json() as { access_token: string, refresh_token: string }
  keep('the 1st refreshed access token', second.access_token)
  keep('the 1st refreshed refresh token', second.refresh_token)

  const refreshedByBody = await fetch(`${base}/refresh`, { method: 'POST', headers: json, body: JSON.stringify({ refresh_token: second.refresh_token }) })
  t.equal(refreshedByBody.status, 200, 'refresh with the token in the body')
  const third = await refreshedByBody.json() as { access_token: string, refresh_token: string }
  keep('the 2nd refreshed access token', third.access_token)
  keep('the 2nd refreshed refresh token', third.refresh_token)

  const reused = await fetch(`${base}/refresh`, { method: 'POST', headers: json, body: JSON.stringify({ refresh_token: first.refresh_token }) })
  t.equal(reused.status, 401, 'a spent refresh token in the body is refused')

  t.equal((await fetch(`${base}/me`, { headers: auth(third.access_token) })).status, 200, 'GET /me')
  // A personal access token (API.md §16): made, used, used with a wrong secret, revoked.
  const made = await fetch(`${base}/api-keys`, { method: 'POST', headers: { ...json, ...auth(first.access_token) }, body: JSON.stringify({ name: 'logs', scopes: ['profile'] }) })
  t.equal(made.status, 201, 'POST /api-keys')
  const key = (await made.json() as { id: number, token: string })
  secrets.push(['the API key', key.token], ['the API key\'s secret', key.token.slice(16)])
  t.equal((await fetch(`${base}/me`, { headers: auth(key.token) })).status, 200, 'GET /me with the key')
  const wrongKey = `${key.token.slice(0, 16)}${'A'.repeat(43)}`
  secrets.push(['a wrong API key\'s secret', wrongKey.slice(16)])
  t.equal((await fetch(`${base}/me`, { headers: auth(wrongKey) })).status, 401, 'a wrong secret: 401')
  t.equal((await fetch(`${base}/api-keys/${key.id}`, { method: 'DELETE', headers: auth(first.access_token) })).status, 204, 'revoked')

  // The second factor (API.md §13). Each 6-digit code is searched for as a logged field's value
  // (six digits alone occur in any log by chance); everything else as it is.
  const codes: string[] = []
  const post = async (path: string, body?: unknown, token?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { ...(body !== undefined && json), ...(token && auth(token)) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: response.status === 204 ? null : await response.json() as Record<string, unknown> }
  }
  // The login's own access token: setup needs a fresh one, not a refreshed one.
  const setup = await post('/mfa/totp/setup', undefined, first.access_token)
  t.equal(setup.status, 200, 'TOTP setup')
  const totpSecret = String(setup.body!.secret)
  secrets.push(['the TOTP secret', totpSecret], ['the otpauth:// URL', String(setup.body!.otpauth_url)], ['the QR code', String(setup.body!.qr_code)])
  await awayFromStepEdge()
  codes.push(totpCode(totpSecret))
  const enabled = await post('/mfa/totp/enable', { code: codes.at(-1) }, first.access_token)
  t.equal(enabled.status, 200, 'TOTP enable')
  const recoveryCodes = enabled.body!.recovery_codes as string[]
  recoveryCodes.forEach((code, i) => secrets.push([`recovery code ${i + 1}`, code]))
  const challenge = async () => {
    const response = await post('/login', { email, password })
    const token = String(response.body!.mfa_token)
    secrets.push(['an mfa_token', token])
    return token
  }
  codes.push(totpCode(totpSecret, 1))
  const wrongCode = codes.at(-1) === '000000' ? '000001' : '000000'
  const firstChallenge = await challenge()
  t.equal((await post('/login/mfa', { mfa_token: firstChallenge, code: wrongCode })).status, 400, 'a wrong code')
  const withCode = await post('/login/mfa', { mfa_token: firstChallenge, code: codes.at(-1) })
  t.equal(withCode.status, 200, 'a login with a code')
  keep('the MFA login\'s access token', String(withCode.body!.access_token))
  keep('the MFA login\'s refresh token', String(withCode.body!.refresh_token))
  const withRecovery = await post('/login/mfa', { mfa_token: await challenge(), recovery_code: recoveryCodes[0] })
  t.equal(withRecovery.status, 200, 'a login with a recovery code')
  const mfaAccess = String(withRecovery.body!.access_token)
  keep('the recovery login\'s access token', mfaAccess)
  const regenerated = await post('/mfa/recovery-codes', undefined, mfaAccess)
  t.equal(regenerated.status, 200, 'new recovery codes')
  ;(regenerated.body!.recovery_codes as string[]).forEach((code, i) => secrets.push([`new recovery code ${i + 1}`, code]))
  t.equal((await post('/mfa/totp/disable', { current_password: password }, mfaAccess)).status, 204, 'TOTP disable')

  const failed = await fetch(`${base}/login`, { method: 'POST', headers: json, body: JSON.stringify({ email, password: wrongPassword }) })
  t.equal(failed.status, 401, 'a failed login')

  // The recovery code ended every other session: the one it started is the live one.
  t.equal((await fetch(`${base}/logout`, { method: 'POST', headers: auth(mfaAccess) })).status, 204, 'logout')
  const revoked = await fetch(`${base}/me`, { headers: auth(mfaAccess) })
  t.equal(revoked.status, 401, 'the logged-out token is refused')

  // A statement that fails (API.md §12, issue 22 item 5): drizzle's error message carries the
  // statement's bound values, here the new user's email and argon2id hash. The 5xx is logged
  // by the driver's code and SQL state alone.
  const connection = await createConnection(`${SERVER_URL}/${database}`)
  await connection.query(`CREATE TRIGGER refuse_failing_users BEFORE INSERT ON users FOR EACH ROW
    IF NEW.email LIKE 'failing-%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF`)
  await connection.end()
  const failingEmail = `failing-${randomBytes(4).toString('hex')}@example.com`
  const failedInsert = await fetch(`${base}/register`, { method: 'POST', headers: json, body: JSON.stringify({ email: failingEmail, name: 'Failing', password }) })
  t.equal(failedInsert.status, 500, 'a failing INSERT answers 500')
  secrets.push(['the email of the failing INSERT', failingEmail])

  // SIGTERM: close-with-grace closes the app and the process exits on its own.
  process.kill(child.pid!, 'SIGTERM')
  const result = await Promise.race([exit, sleep(20_000).then(() => null)])
  t.ok(result, 'the server stops within 20 s of SIGTERM')
  t.equal(result?.code, 0, 'and exits with code 0', { stderr })
  const output = stdout + stderr

  // The log is there and is about these requests, so the absence checks below can fail.
  const lines: LogLine[] = stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as LogLine)
  const requestLines = lines.filter((line) => line.req?.url !== undefined)
  t.ok(requestLines.length >= 10, `request lines were logged (${requestLines.length})`)
  for (const url of ['/register', '/login', '/refresh', '/logout', '/me']) {
    t.ok(requestLines.some((line) => line.req?.url === url), `a request line for ${url}`)
  }
  t.ok(lines.some((line) => line.res?.statusCode === 401), 'the failed requests were logged with their status')
  t.ok(lines.some((line) => line.msg === 'logout'), 'the logout line was logged')

  const traceLines = lines.filter((line) => line.reqId === 'trace-me-123')
  t.ok(traceLines.length >= 2, `the traced request has its lines (${traceLines.length})`)
  t.ok(traceLines.some((line) => line.msg === 'incoming request' && line.req?.url === '/me'), 'its incoming request line carries reqId trace-me-123')
  t.ok(traceLines.some((line) => line.msg === 'request completed' && line.res?.statusCode === 200), 'and so does its completion line')
  t.notOk(output.includes('not a safe id'), 'the unsafe request id is not logged')

  t.equal(tokens.length, 9, 'nine tokens were issued')
  t.equal(new Set(tokens).size, 9, 'all different')
  for (const [what, secret] of secrets) {
    t.ok(secret.length >= 16, `${what} is long enough to search for`)
    t.notOk(output.includes(secret), `${what} is not in the log`)
  }
  t.ok(lines.some((line) => line.code === 'invalid_mfa_code'), 'the wrong code was logged, by its error code')
  for (const code of codes) t.notMatch(output, new RegExp(`"[a-z_]*code[a-z_]*"\\s*:\\s*"?${code}`), `the TOTP code ${code} is not a logged value`)
  t.notMatch(output, /"(secret|otpauth_url|qr_code|mfa_token|recovery_codes?)"\s*:\s*"(?!\[redacted\])/, 'no second-factor field is logged unredacted')
  t.notMatch(output, /\$argon2/, 'no password hash in the log')
  const failure = lines.find((line) => line.level === 50 && line.msg === 'internal_error') as { err?: { code?: string, sqlState?: string, errno?: number } } | undefined
  t.ok(failure, 'the failing INSERT was logged as an error')
  t.equal(failure?.err?.code, 'ER_SIGNAL_EXCEPTION', 'with the driver\'s code')
  t.equal(failure?.err?.sqlState, '45000', 'and the SQL state')
  t.equal(failure?.err?.errno, 1644, 'and the errno')
  t.notMatch(output, /"authorization"\s*:\s*"Bearer/i, 'no Authorization header in the log')
})
