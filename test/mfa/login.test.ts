import t from 'tap'
import type { App } from '../../src/app.js'
import { awayFromStepEdge, bearer, build, decodeJwt, enrolTotp, newUser, registerAndLogin, totpCode, type Session } from '../helper.js'

// Logging in with a second factor (API.md §13): POST /login answers a challenge, POST /login/mfa
// finishes it with a TOTP code or a recovery code. Each test has users of its own: a TOTP code is
// accepted once per user, so the steps one user has spent are not available to the next test.

interface Challenge { mfa_required: true, mfa_token: string, methods: string[], expires_in: number }

/** A registered user with TOTP on, and their password. */
async function totpUser (app: App) {
  const body = newUser()
  const session = await registerAndLogin(app, body)
  const { secret, recoveryCodes } = await enrolTotp(app, session)
  return { ...body, id: session.user.id, secret, recoveryCodes }
}

async function challengeOf (app: App, email: string, password: string, query = ''): Promise<Challenge> {
  const response = await app.inject({ method: 'POST', url: `/login${query}`, payload: { email, password } })
  if (response.statusCode !== 200 || !response.json().mfa_required) throw new Error(`no challenge: ${response.body}`)
  return response.json()
}

const finish = (app: App, payload: Record<string, unknown>, query = '') => app.inject({ method: 'POST', url: `/login/mfa${query}`, payload })

const eventsOf = async (app: App, userId: number, type: string) => {
  const [rows] = await app.pool.query('SELECT type, session_id, details FROM security_events WHERE subject_user_id = ? AND type = ? ORDER BY id', [userId, type])
  return (rows as Array<{ type: string, session_id: string | null, details: string }>).map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }))
}

t.test('with TOTP on, a right password gets a challenge and no tokens; a code finishes the login', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const response = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })
  t.equal(response.statusCode, 200)
  const challenge = response.json() as Challenge
  t.same(Object.keys(challenge).sort(), ['expires_in', 'methods', 'mfa_required', 'mfa_token'], 'a challenge, and nothing else: no token, no user')
  t.equal(challenge.mfa_required, true)
  t.same(challenge.methods, ['totp', 'recovery_code'])
  t.equal(challenge.expires_in, 300, 'the mfa_token lives 5 minutes')
  t.match(challenge.mfa_token, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url')
  t.notOk(response.headers['set-cookie'], 'no cookie')
  const [stored] = await app.pool.query('SELECT token_hash FROM mfa_challenges WHERE user_id = ?', [user.id]) as unknown as [Array<{ token_hash: string }>]
  t.not(stored[0]!.token_hash, challenge.mfa_token, 'only its hash is stored')

  // The code of the next step: enabling spent the current one (a code works once).
  const done = await finish(app, { mfa_token: challenge.mfa_token, code: totpCode(user.secret, 1) })
  t.equal(done.statusCode, 200, 'POST /login/mfa with a code: 200', { body: done.body })
  const pair = done.json() as Session & { token_type: string }
  t.equal(pair.token_type, 'Bearer')
  t.ok(pair.refresh_token, 'the usual pair: a refresh token in the body')
  t.equal(pair.user.id, user.id)
  const claims = decodeJwt(pair.access_token)
  t.same(claims.amr, ['pwd', 'otp'], 'amr: password and one-time password (RFC 8176)')
  t.equal(claims.fresh, true, 'a fresh token')
  t.equal(claims.auth_time, Math.floor(parseInt(String(claims.sid).replace(/-/g, '').slice(0, 12), 16) / 1000), 'auth_time: the login, as the session id records it')
  const me = await app.inject({ method: 'GET', url: '/me', headers: bearer(pair.access_token) })
  t.equal(me.statusCode, 200, 'the token works')
  t.same(me.json().mfa, { totp: true, passkeys: 0, recovery_codes_left: 10 }, 'GET /me shows the second factors')
  const [succeeded] = (await eventsOf(app, user.id, 'login.succeeded')).slice(-1)
  t.same(succeeded?.details, { amr: ['pwd', 'otp'] }, 'login.succeeded records how the login was proved')
  t.equal(succeeded?.session_id, claims.sid, 'and the session it started')

  const again = await finish(app, { mfa_token: challenge.mfa_token, code: totpCode(user.secret, 1) })
  t.equal(again.statusCode, 401, 'the mfa_token is single-use')
  t.equal(again.json().code, 'invalid_mfa_token')
})

t.test('a code is accepted once, within one step either side of now', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const attempt = async (offset: number, now: number) =>
    finish(app, { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, code: totpCode(user.secret, offset, now) })
  // Clear the step spent by enabling (a code works once, and the tests below need the steps
  // around now): the same conditional UPDATE guards whatever value it holds.
  await app.pool.query('UPDATE totp_credentials SET last_used_step = NULL WHERE user_id = ?', [user.id])
  await awayFromStepEdge(8000)
  const now = Date.now()
  t.equal((await attempt(-2, now)).json().code, 'invalid_mfa_code', 'two steps behind: refused')
  t.equal((await attempt(2, now)).json().code, 'invalid_mfa_code', 'two steps ahead: refused')
  t.equal((await attempt(-1, now)).statusCode, 200, 'one step behind: accepted')
  t.equal((await attempt(0, now)).statusCode, 200, 'the current step: accepted')
  const replay = await attempt(0, now)
  t.equal(replay.statusCode, 400, 'the same code again: 400')
  t.equal(replay.json().code, 'invalid_mfa_code', 'invalid_mfa_code (a replay)')
  t.equal((await attempt(-1, now)).json().code, 'invalid_mfa_code', 'a code of an earlier step than one used: refused')
  t.equal((await attempt(1, now)).statusCode, 200, 'one step ahead: accepted')
  t.equal((await attempt(1, now)).statusCode, 400, 'and then refused too')
})

t.test('concurrent uses of one right code: exactly one logs in', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const code = totpCode(user.secret, 1)
  const challenges = await Promise.all(Array.from({ length: 5 }, () => challengeOf(app, user.email, user.password)))
  const responses = await Promise.all(challenges.map((challenge) => finish(app, { mfa_token: challenge.mfa_token, code })))
  const statuses = responses.map((response) => response.statusCode).sort()
  t.same(statuses, [200, 400, 400, 400, 400], 'one 200, the rest 400 invalid_mfa_code')
})

t.test('5 wrong codes spend the mfa_token; each says how many tries are left', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const { mfa_token: token } = await challengeOf(app, user.email, user.password)
  const right = totpCode(user.secret, 1)
  const wrong = right === '000000' ? '000001' : '000000'
  const messages: string[] = []
  for (let i = 0; i < 5; i++) {
    const response = await finish(app, { mfa_token: token, code: wrong })
    t.equal(response.statusCode, 400, `wrong code ${i + 1}: 400`)
    t.equal(response.json().code, 'invalid_mfa_code')
    messages.push(response.json().message)
  }
  t.match(messages[0], /4 more tries/, 'the first says 4 more tries')
  t.match(messages[3], /1 more try/, 'the fourth, 1 more try')
  t.match(messages[4], /last try: log in again/, 'the fifth, that it was the last')
  const after = await finish(app, { mfa_token: token, code: right })
  t.equal(after.statusCode, 401, 'then even the right code: 401')
  t.equal(after.json().code, 'invalid_mfa_token', 'invalid_mfa_token')
  const failed = await eventsOf(app, user.id, 'mfa.failed')
  t.same(failed.map((event) => event.details), [4, 3, 2, 1, 0].map((left) => ({ method: 'totp', attempts_left: left })), 'each wrong code is an mfa.failed event')
  t.equal((await finish(app, { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, code: right })).statusCode, 200,
    'a new login gets 5 new tries, and the code still works: a wrong code spends none')
})

t.test('an unknown, malformed, expired or voided mfa_token: 401 invalid_mfa_token', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const code = totpCode(user.secret, 1)
  const unknown = await finish(app, { mfa_token: 'A'.repeat(43), code })
  t.equal(unknown.statusCode, 401, 'unknown: 401')
  t.equal(unknown.json().code, 'invalid_mfa_token')
  t.match(String(unknown.headers['www-authenticate']), /^Bearer realm="boardkit"$/, 'with the realm, and no invalid_token (no Bearer token was sent)')
  t.equal((await finish(app, { mfa_token: 'not a token', code })).json().code, 'invalid_mfa_token', 'malformed: the same')

  const expiring = await challengeOf(app, user.email, user.password)
  await app.pool.query('UPDATE mfa_challenges SET expires_at = NOW(3) - INTERVAL 1 SECOND')
  t.equal((await finish(app, { mfa_token: expiring.mfa_token, code })).json().code, 'invalid_mfa_token', 'expired: the same')

  // A password change between the password check and the code voids the challenge.
  const pending = await challengeOf(app, user.email, user.password)
  const other = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, recovery_code: user.recoveryCodes[0] } })
  t.equal(other.statusCode, 200, 'a session from a recovery code')
  const changed = await app.inject({
    method: 'PUT', url: `/users/${user.id}/password`, headers: bearer(other.json().access_token),
    payload: { current_password: user.password, new_password: 'a changed password' },
  })
  t.equal(changed.statusCode, 204, 'the password changes')
  const voided = await finish(app, { mfa_token: pending.mfa_token, code })
  t.equal(voided.statusCode, 401, 'the challenge begun before the change: 401')
  t.equal(voided.json().code, 'invalid_mfa_token')
})

t.test('send exactly one of code and recovery_code; a malformed code is a validation error', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const { mfa_token: token } = await challengeOf(app, user.email, user.password)
  const both = await finish(app, { mfa_token: token, code: '123456', recovery_code: user.recoveryCodes[0] })
  t.equal(both.statusCode, 400)
  t.equal(both.json().code, 'validation_error', 'both: validation_error')
  t.equal(both.json().details[0].path, '/recovery_code')
  const neither = await finish(app, { mfa_token: token })
  t.equal(neither.json().code, 'validation_error', 'neither: validation_error')
  t.equal(neither.json().details[0].path, '/code')
  const letters = await finish(app, { mfa_token: token, code: '12345a' })
  t.equal(letters.json().code, 'validation_error', 'a code that is not 6 digits: validation_error')
  t.equal(letters.json().details[0].path, '/code')
  t.equal((await finish(app, { mfa_token: token, code: totpCode(user.secret, 1) })).statusCode, 200, 'none of these spent a try')
})

t.test('a recovery code logs in once, in any case and grouping, and ends every other session', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const earlier = await finish(app, { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, code: totpCode(user.secret, 1) })
  t.equal(earlier.statusCode, 200, 'a session from a TOTP login')
  const code = user.recoveryCodes[3]!
  t.match(code, /^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/, 'a code reads xxxx-xxxx-xxxx-xxxx')
  const typed = ` ${code.toUpperCase().replaceAll('-', ' ')} `
  const response = await finish(app, { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, recovery_code: typed })
  t.equal(response.statusCode, 200, 'upper case, spaces for hyphens: accepted')
  const pair = response.json() as Session
  t.same(decodeJwt(pair.access_token).amr, ['pwd', 'otp'], 'a recovery code proves the second factor as a code does')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(earlier.json().access_token) })).json().code, 'token_revoked',
    'the other session is over')
  const me = await app.inject({ method: 'GET', url: '/me', headers: bearer(pair.access_token) })
  t.equal(me.statusCode, 200, 'the new session lives')
  t.equal(me.json().mfa.recovery_codes_left, 9, '9 recovery codes left')
  const [used] = await eventsOf(app, user.id, 'mfa.recovery_code_used')
  t.same(used?.details, { recovery_codes_left: 9, sessions_ended: 'others' }, 'mfa.recovery_code_used is written')
  t.equal(used?.session_id, decodeJwt(pair.access_token).sid, 'with the session it started')

  const again = await finish(app, { mfa_token: (await challengeOf(app, user.email, user.password)).mfa_token, recovery_code: code })
  t.equal(again.statusCode, 400, 'the same code again: 400')
  t.equal(again.json().code, 'invalid_mfa_code')
  t.same((await eventsOf(app, user.id, 'mfa.failed')).map((event) => event.details), [{ method: 'recovery_code', attempts_left: 4 }])
  const [row] = await app.pool.query('SELECT COUNT(*) AS n FROM recovery_codes WHERE code_hash = ? OR code_hash = ?', [code, code.replaceAll('-', '')]) as unknown as [Array<{ n: number }>]
  t.equal(Number(row[0]!.n), 0, 'the codes are stored hashed, never as they are')
})

t.test('wrong codes count toward the login lockout, and a right one clears it', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '4' })
  const user = await totpUser(app)
  const right = totpCode(user.secret, 1)
  const wrong = right === '000000' ? '000001' : '000000'
  // The login's password check is attempt 1, kept (not cleared) while a code is due.
  const { mfa_token: token } = await challengeOf(app, user.email, user.password)
  t.equal((await finish(app, { mfa_token: token, code: wrong })).statusCode, 400, 'attempt 2: a wrong code, checked')
  t.equal((await finish(app, { mfa_token: token, code: wrong })).statusCode, 400, 'attempt 3')
  t.equal((await finish(app, { mfa_token: token, code: wrong })).statusCode, 400, 'attempt 4')
  const locked = await finish(app, { mfa_token: token, code: right })
  t.equal(locked.statusCode, 429, 'attempt 5, the right code: refused unchecked')
  t.equal(locked.json().code, 'rate_limited')
  t.ok(Number(locked.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })).statusCode, 429,
    'the password login is locked too: one count for every way in')

  await app.pool.query('DELETE FROM login_failures')
  const fresh = await challengeOf(app, user.email, user.password)
  t.equal((await finish(app, { mfa_token: fresh.mfa_token, code: wrong })).statusCode, 400, 'after the lock: attempts 1 (password) and 2 (code)')
  t.equal((await finish(app, { mfa_token: fresh.mfa_token, code: right })).statusCode, 200, 'attempt 3, the right code: 200')
  const [rows] = await app.pool.query('SELECT COUNT(*) AS n FROM login_failures') as unknown as [Array<{ n: number }>]
  t.equal(Number(rows[0]!.n), 0, 'and the count is cleared')
})

t.test('browser mode: refresh=cookie on /login/mfa sets the cookie; a refresh keeps amr and auth_time', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const challenge = await challengeOf(app, user.email, user.password, '?refresh=cookie')
  const done = await finish(app, { mfa_token: challenge.mfa_token, code: totpCode(user.secret, 1) }, '?refresh=cookie')
  t.equal(done.statusCode, 200)
  t.notOk(done.json().refresh_token, 'no refresh token in the body')
  const cookie = /__Host-refresh=[^;]+/.exec(String(done.headers['set-cookie']))?.[0]
  t.ok(cookie, 'it is in the __Host-refresh cookie')
  t.match(String(done.headers['set-cookie']), /HttpOnly; Secure; SameSite=Strict/)
  const first = decodeJwt(done.json().access_token)

  const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: { cookie: cookie!, 'x-requested-with': 'test' } })
  t.equal(refreshed.statusCode, 200, 'a cookie refresh')
  const claims = decodeJwt(refreshed.json().access_token)
  t.same(claims.amr, ['pwd', 'otp'], 'the refreshed token keeps amr')
  t.equal(claims.auth_time, first.auth_time, 'and the login\'s time')
  t.equal(claims.fresh, false, 'and is not fresh')
})

t.test('without a second factor: amr ["pwd"], through refreshes', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const claims = decodeJwt(session.access_token)
  t.same(claims.amr, ['pwd'])
  t.type(claims.auth_time, 'number')
  const refreshed = await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: session.refresh_token } })
  t.same(decodeJwt(refreshed.json().access_token).amr, ['pwd'], 'a refresh does not add a factor')
  t.equal(decodeJwt(refreshed.json().access_token).auth_time, claims.auth_time)
  const me = await app.inject({ method: 'GET', url: '/me', headers: bearer(session.access_token) })
  t.same(me.json().mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'GET /me: no second factor')
})

t.test('the audit log of all this holds no secret, code or mfa_token', async (t) => {
  const app = await build(t)
  const user = await totpUser(app)
  const tokens: string[] = []
  const challenge = async () => {
    const { mfa_token: token } = await challengeOf(app, user.email, user.password)
    tokens.push(token)
    return token
  }
  const code = totpCode(user.secret, 1)
  await finish(app, { mfa_token: await challenge(), code: code === '000000' ? '000001' : '000000' })
  t.equal((await finish(app, { mfa_token: await challenge(), code })).statusCode, 200)
  t.equal((await finish(app, { mfa_token: await challenge(), recovery_code: user.recoveryCodes[0] })).statusCode, 200)
  const [rows] = await app.pool.query('SELECT * FROM security_events WHERE subject_user_id = ?', [user.id]) as unknown as [Array<Record<string, unknown>>]
  t.same([...new Set(rows.map((row) => row.type))].sort(), ['login.succeeded', 'mfa.enabled', 'mfa.failed', 'mfa.recovery_code_used', 'user.registered'],
    'the events of an enrolment, a wrong code and two logins')
  const text = JSON.stringify(rows)
  for (const secret of [user.secret, ...user.recoveryCodes, ...user.recoveryCodes.map((recovery) => recovery.replaceAll('-', '')), ...tokens]) {
    t.notOk(text.includes(secret), `${secret.slice(0, 8)}… is not in the audit log`)
  }
  // Six digits may occur in an id or a time by chance: the code is looked for where a careless
  // change would put it, in the details.
  t.notMatch(JSON.stringify(rows.map((row) => row.details)), code, 'nor is the code')
})
