import t from 'tap'
import { generateSync } from 'otplib'
import type { App } from '../../src/app.js'
import { matchTotpStep, openTotpSecret, sealTotpSecret, stepAt } from '../../src/mfa/totp.js'
import { awayFromStepEdge, bearer, build, decodeJwt, enrolTotp, login, registerAndLogin, totpCode, type Session } from '../helper.js'

// Turning the second factor on and off (API.md §13): setup, enable, disable, new recovery codes,
// and what each does to the account's other sessions and its audit log.

const post = (app: App, url: string, session: { access_token: string }, payload?: Record<string, unknown>) =>
  app.inject({ method: 'POST', url, headers: bearer(session.access_token), ...(payload && { payload }) })

const me = async (app: App, session: { access_token: string }) => app.inject({ method: 'GET', url: '/me', headers: bearer(session.access_token) })

/** A second session of the user's (a plain password login while TOTP is off). */
const otherSession = (app: App, session: Session & { password: string }) => login(app, session.user.email, session.password)

async function events (app: App, userId: number) {
  const [rows] = await app.pool.query('SELECT type, actor_id, session_id, details FROM security_events WHERE subject_user_id = ? AND type LIKE \'mfa.%\' ORDER BY id', [userId])
  return (rows as Array<{ type: string, actor_id: number, session_id: string, details: string }>).map((row) => ({ ...row, details: JSON.parse(row.details) as unknown }))
}

/** A refreshed (not fresh) access token of the session. */
async function refreshed (app: App, session: Session): Promise<{ access_token: string }> {
  return (await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: session.refresh_token } })).json()
}

t.test('setup: a secret, its otpauth:// URL and a QR code; nothing is active yet', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const response = await post(app, '/mfa/totp/setup', session)
  t.equal(response.statusCode, 200)
  const setup = response.json() as { secret: string, otpauth_url: string, qr_code: string }
  t.same(Object.keys(setup).sort(), ['otpauth_url', 'qr_code', 'secret'])
  t.match(setup.secret, /^[A-Z2-7]{32}$/, '160 bits in base32: 32 characters')
  const url = new URL(setup.otpauth_url)
  t.equal(url.protocol, 'otpauth:')
  t.equal(url.host, 'totp')
  t.equal(decodeURIComponent(url.pathname), `/boardkit:${session.user.email}`, 'labelled boardkit:<email>')
  t.equal(url.searchParams.get('secret'), setup.secret)
  t.equal(url.searchParams.get('issuer'), 'boardkit', 'issuer boardkit')
  t.ok(['SHA1', null].includes(url.searchParams.get('algorithm')), 'SHA-1 (the default when absent)')
  t.ok(['6', null].includes(url.searchParams.get('digits')), '6 digits')
  t.ok(['30', null].includes(url.searchParams.get('period')), '30 s')
  t.match(setup.qr_code, /^data:image\/svg\+xml;base64,/, 'the QR code is an SVG data: URL')
  t.match(Buffer.from(setup.qr_code.split(',')[1]!, 'base64').toString(), /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/, 'of an SVG image')

  t.same((await me(app, session)).json().mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'not on yet')
  const [rows] = await app.pool.query('SELECT secret, enabled_at FROM totp_credentials WHERE user_id = ?', [session.user.id]) as unknown as [Array<{ secret: string, enabled_at: Date | null }>]
  t.equal(rows[0]!.enabled_at, null, 'stored, not enabled')
  t.notMatch(rows[0]!.secret, setup.secret, 'the secret is not stored in clear')
  t.equal(openTotpSecret(rows[0]!.secret, session.user.id, app.config.JWT_KEY_ENCRYPTION_SECRET), setup.secret, 'it is encrypted')
  t.throws(() => openTotpSecret(rows[0]!.secret, session.user.id + 1, app.config.JWT_KEY_ENCRYPTION_SECRET), /does not decrypt/, 'bound to its user: it does not open as another\'s')
  t.throws(() => openTotpSecret(rows[0]!.secret, session.user.id, 'another-key-encryption-secret-of-32-bytes'), /does not decrypt/, 'nor under another key')
  t.throws(() => openTotpSecret('v0.x.y.z', session.user.id, app.config.JWT_KEY_ENCRYPTION_SECRET), /unknown ciphertext format/)

  const login = await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })
  t.ok(login.json().access_token, 'a login still needs the password alone')

  const second = (await post(app, '/mfa/totp/setup', session)).json() as { secret: string }
  t.not(second.secret, setup.secret, 'a second setup makes a new secret')
  await awayFromStepEdge()
  const stale = await post(app, '/mfa/totp/enable', session, { code: totpCode(setup.secret) })
  t.equal(stale.json().code, 'invalid_mfa_code', 'the replaced secret\'s codes no longer enable')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: totpCode(second.secret) })).statusCode, 200, 'the new one\'s do')
})

t.test('setup needs a fresh token; enable needs a setup and a right code', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const stale = await post(app, '/mfa/totp/setup', await refreshed(app, session))
  t.equal(stale.statusCode, 401, 'a refreshed token: 401')
  t.equal(stale.json().code, 'fresh_token_required')
  const unset = await post(app, '/mfa/totp/enable', session, { code: '123456' })
  t.equal(unset.statusCode, 409, 'enable before setup: 409')
  t.equal(unset.json().code, 'mfa_setup_required')
  const { secret } = (await post(app, '/mfa/totp/setup', session)).json() as { secret: string }
  await awayFromStepEdge()
  const right = totpCode(secret)
  const wrong = await post(app, '/mfa/totp/enable', session, { code: right === '000000' ? '000001' : '000000' })
  t.equal(wrong.statusCode, 400, 'a wrong code: 400')
  t.equal(wrong.json().code, 'invalid_mfa_code')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: totpCode(secret, 2) })).json().code, 'invalid_mfa_code', 'a code two steps ahead: 400')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: '12 345' })).json().code, 'validation_error', 'not 6 digits: validation_error')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: right, extra: 1 })).json().code, 'validation_error', 'an unknown property: validation_error')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: right })).statusCode, 200, 'the right one: 200')
})

t.test('enable: 10 recovery codes, TOTP on, every other session ended, mfa.enabled written', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const other = await otherSession(app, session)
  const { secret, recoveryCodes } = await enrolTotp(app, session)
  t.equal(recoveryCodes.length, 10, '10 recovery codes')
  t.equal(new Set(recoveryCodes).size, 10, 'all different')
  for (const code of recoveryCodes) t.match(code, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/, `${code}: 80 bits in Crockford base32`)
  t.same((await me(app, session)).json().mfa, { totp: true, passkeys: 0, recovery_codes_left: 10 }, 'GET /me: TOTP on, 10 codes')
  t.equal((await me(app, other)).json().code, 'token_revoked', 'the other session is over')
  t.same(decodeJwt(session.access_token).amr, ['pwd'], 'this session stays, as a password login')

  const [stored] = await app.pool.query('SELECT code_hash FROM recovery_codes WHERE user_id = ?', [session.user.id]) as unknown as [Array<{ code_hash: string }>]
  t.equal(stored.length, 10, '10 rows')
  t.ok(stored.every((row) => /^[0-9a-f]{64}$/.test(row.code_hash) && !recoveryCodes.includes(row.code_hash)), 'each a SHA-256, none the code')
  t.same(await events(app, session.user.id), [{ type: 'mfa.enabled', actor_id: session.user.id, session_id: decodeJwt(session.access_token).sid, details: { method: 'totp', sessions_ended: 'others' } }],
    'mfa.enabled, by the user, from this session')

  const again = await post(app, '/mfa/totp/enable', session, { code: totpCode(secret) })
  t.equal(again.statusCode, 409, 'enable again: 409')
  t.equal(again.json().code, 'mfa_already_enabled')
  const setup = await post(app, '/mfa/totp/setup', session)
  t.equal(setup.statusCode, 409, 'setup while on: 409')
  t.equal(setup.json().code, 'mfa_already_enabled', 'the enabled secret is never replaced')
})

t.test('new recovery codes: the old ones void, other sessions ended, fresh token, TOTP on', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const off = await post(app, '/mfa/recovery-codes', session)
  t.equal(off.statusCode, 409, 'with TOTP off: 409')
  t.equal(off.json().code, 'mfa_not_enabled')
  const { secret, recoveryCodes: old } = await enrolTotp(app, session)
  const stale = await post(app, '/mfa/recovery-codes', await refreshed(app, session))
  t.equal(stale.json().code, 'fresh_token_required', 'a refreshed token: 401 fresh_token_required')

  // Another session of the user, from a login with a code.
  const challenge = (await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })).json()
  const other = (await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: challenge.mfa_token, code: totpCode(secret, 1) } })).json() as Session
  t.equal((await me(app, other)).statusCode, 200)

  const response = await post(app, '/mfa/recovery-codes', session)
  t.equal(response.statusCode, 200)
  const fresh = response.json().recovery_codes as string[]
  t.equal(fresh.length, 10, '10 new codes')
  t.notOk(fresh.some((code) => old.includes(code)), 'none of them an old one')
  t.equal((await me(app, other)).json().code, 'token_revoked', 'the other session is over')
  t.equal((await me(app, session)).json().mfa.recovery_codes_left, 10)
  t.same((await events(app, session.user.id)).map((event) => event.type), ['mfa.enabled', 'mfa.recovery_codes_regenerated'])
  t.same((await events(app, session.user.id))[1]!.details, { count: 10, sessions_ended: 'others' })

  const loginWith = async (recoveryCode: string) => {
    const { mfa_token: token } = (await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })).json()
    return app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: token, recovery_code: recoveryCode } })
  }
  t.equal((await loginWith(old[0]!)).json().code, 'invalid_mfa_code', 'an old code no longer works')
  t.equal((await loginWith(fresh[0]!)).statusCode, 200, 'a new one does')
})

t.test('disable: the password, a fresh token; off, codes void, other sessions ended, mfa.disabled written', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const session = await registerAndLogin(app)
  const notOn = await post(app, '/mfa/totp/disable', session, { current_password: session.password })
  t.equal(notOn.statusCode, 409, 'TOTP off: 409')
  t.equal(notOn.json().code, 'mfa_not_enabled')
  const { secret } = await enrolTotp(app, session)
  const challenge = (await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })).json()
  const other = (await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: challenge.mfa_token, code: totpCode(secret, 1) } })).json() as Session
  // That login's code cleared the lockout count; what follows counts from zero.

  t.equal((await post(app, '/mfa/totp/disable', await refreshed(app, session), { current_password: session.password })).json().code, 'fresh_token_required',
    'a refreshed token: 401 fresh_token_required')
  t.equal((await post(app, '/mfa/totp/disable', session, {})).json().code, 'validation_error', 'no current_password: validation_error')
  const wrong = await post(app, '/mfa/totp/disable', session, { current_password: 'not the password' })
  t.equal(wrong.statusCode, 401, 'a wrong password: 401')
  t.equal(wrong.json().code, 'invalid_credentials')
  t.equal((await post(app, '/mfa/totp/disable', session, { current_password: 'not the password' })).statusCode, 401, 'again: 401')
  t.equal((await post(app, '/mfa/totp/disable', session, { current_password: session.password })).statusCode, 204,
    'the right password, third attempt of 3: 204, and the count starts again')
  t.same((await me(app, session)).json().mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'GET /me: off, no codes')
  t.equal((await me(app, other)).json().code, 'token_revoked', 'the other session is over')
  t.same((await events(app, session.user.id)).map((event) => event.type), ['mfa.enabled', 'mfa.disabled'])
  const login = await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })
  t.ok(login.json().access_token, 'a login needs the password alone again')
  const [rows] = await app.pool.query('SELECT (SELECT COUNT(*) FROM totp_credentials WHERE user_id = ?) + (SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?) AS n',
    [session.user.id, session.user.id]) as unknown as [Array<{ n: number }>]
  t.equal(Number(rows[0]!.n), 0, 'the secret and the codes are deleted')

  // Each wrong current_password counts toward the lockout (API.md §12).
  await enrolTotp(app, session)
  for (let i = 0; i < 3; i++) await post(app, '/mfa/totp/disable', session, { current_password: 'not the password' })
  const locked = await post(app, '/mfa/totp/disable', session, { current_password: session.password })
  t.equal(locked.statusCode, 429, 'after 3 wrong passwords, even the right one: 429')
  t.equal(locked.json().code, 'rate_limited')
})

t.test('a login that waits for its code dies when TOTP is turned off', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const { secret } = await enrolTotp(app, session)
  const challenge = (await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })).json()
  t.equal((await post(app, '/mfa/totp/disable', session, { current_password: session.password })).statusCode, 204)
  const finished = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: challenge.mfa_token, code: totpCode(secret, 1) } })
  t.equal(finished.statusCode, 401)
  t.equal(finished.json().code, 'invalid_mfa_token')
})

t.test('the TOTP check: the step of a code, ±1 step, no match', async (t) => {
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
  const now = Date.UTC(2026, 0, 1, 12, 0, 10)
  const step = stepAt(now)
  const codeAt = (offset: number) => generateSync({ secret, epoch: (step + offset) * 30 })
  t.equal(matchTotpStep(secret, codeAt(0), now), step, 'the current step')
  t.equal(matchTotpStep(secret, codeAt(-1), now), step - 1, 'the one before')
  t.equal(matchTotpStep(secret, codeAt(1), now), step + 1, 'the one after')
  t.equal(matchTotpStep(secret, codeAt(2), now), null, 'two after: none')
  t.equal(matchTotpStep(secret, codeAt(-2), now), null, 'two before: none')
  t.equal(matchTotpStep(secret, 'abcdef', now), null, 'not digits: none, without an error')
  // RFC 6238 appendix B, SHA-1, key "12345678901234567890" (base32 below), T = 59 s: 94287082,
  // of which a 6-digit code is the last 6.
  t.equal(matchTotpStep('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', '287082', 59_000), 1, 'RFC 6238\'s test vector (59 s, step 1)')
  const sealed = sealTotpSecret(secret, 7, 'a-key-encryption-secret-of-32-bytes!!')
  t.match(sealed, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/, 'sealed as v1.<iv>.<tag>.<ciphertext>')
  t.not(sealTotpSecret(secret, 7, 'a-key-encryption-secret-of-32-bytes!!'), sealed, 'with a new IV each time')
})

t.test('turning TOTP on is one transaction: a failing event leaves it off and the other sessions alive', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const other = await otherSession(app, session)
  const { secret } = (await post(app, '/mfa/totp/setup', session)).json() as { secret: string }
  // The event is the last write of the transaction: refuse it, and everything before must go too.
  await app.pool.query(`CREATE TRIGGER refuse_mfa_events BEFORE INSERT ON security_events FOR EACH ROW
    IF NEW.type LIKE 'mfa.%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF`)
  await awayFromStepEdge()
  const failed = await post(app, '/mfa/totp/enable', session, { code: totpCode(secret) })
  t.equal(failed.statusCode, 500, 'the failing event: 500')
  t.same((await me(app, session)).json().mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'TOTP is still off, no codes')
  t.equal((await me(app, other)).statusCode, 200, 'the other session lives')
  await app.pool.query('DROP TRIGGER refuse_mfa_events')
  t.equal((await post(app, '/mfa/totp/enable', session, { code: totpCode(secret) })).statusCode, 200, 'without the trigger, the same code turns it on')
})

t.test('expired challenges are purged', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  await enrolTotp(app, session)
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })
  await app.pool.query('UPDATE mfa_challenges SET expires_at = NOW(3) - INTERVAL 1 SECOND ORDER BY created_at LIMIT 1')
  t.equal(await app.repos.mfa.purgeExpired(), 1, 'the expired one goes')
  const [rows] = await app.pool.query('SELECT COUNT(*) AS n FROM mfa_challenges') as unknown as [Array<{ n: number }>]
  t.equal(Number(rows[0]!.n), 1, 'the live one stays')
})
