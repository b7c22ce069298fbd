// Passkeys through the API (API.md §14), with a software authenticator (test/webauthn-authenticator.ts)
// instead of a browser: registration, sign-in with and without an email, the second factor, the
// management routes, and every refusal. The browser flows are in test-e2e/demo-passkeys.e2e.ts.
import t from 'tap'
import type { App } from '../../src/app.js'
import { bearer, build, decodeJwt, enrolTotp, login, newUser, registerAndLogin, type Session } from '../helper.js'
import { SoftwareAuthenticator } from '../webauthn-authenticator.js'

const ORIGIN = 'http://localhost:3000'

/** Makes a passkey for the session's user with `authenticator`: the 201's body. */
async function addPasskey (app: App, session: { access_token: string }, authenticator: SoftwareAuthenticator, name?: string) {
  const options = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(session.access_token) })
  if (options.statusCode !== 200) throw new Error(`options: ${options.body}`)
  const response = authenticator.register(options.json())
  const added = await app.inject({ method: 'POST', url: '/passkeys/register', headers: bearer(session.access_token), payload: { response, ...(name ? { name } : {}) } })
  if (added.statusCode !== 201) throw new Error(`register: ${added.body}`)
  return added.json() as { id: number, name: string }
}

/** Request options for a sign-in (discoverable without an email). */
async function loginOptions (app: App, email?: string) {
  const options = await app.inject({ method: 'POST', url: '/login/passkey/options', payload: email === undefined ? {} : { email } })
  if (options.statusCode !== 200) throw new Error(`login options: ${options.body}`)
  return options.json()
}

const signIn = (app: App, response: unknown, query = '') => app.inject({ method: 'POST', url: `/login/passkey${query}`, payload: { response } })

const eventsOf = async (app: App, userId: number, type: string) => {
  const [rows] = await app.pool.query('SELECT details FROM security_events WHERE subject_user_id = ? AND type = ? ORDER BY id', [userId, type])
  return (rows as Array<{ details: string | object }>).map((row) => typeof row.details === 'string' ? JSON.parse(row.details) : row.details)
}

t.test('register a passkey, then sign in with it without an email', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const other = await login(app, me.user.email, me.password)
  const authenticator = new SoftwareAuthenticator()

  const options = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(me.access_token) })
  t.equal(options.statusCode, 200)
  const creation = options.json()
  t.equal(creation.rp.id, 'localhost', 'the RP ID: APP_URL is 127.0.0.1, which browsers refuse, so localhost')
  t.equal(creation.authenticatorSelection.residentKey, 'preferred', 'a discoverable credential preferred')
  t.equal(creation.authenticatorSelection.userVerification, 'preferred')
  t.equal(creation.attestation, 'none')
  t.same(creation.excludeCredentials, [], 'nothing to exclude yet')
  t.not(creation.user.id, Buffer.from(String(me.user.id)).toString('base64url'), 'the user handle is not the user id')
  t.not(creation.user.id, Buffer.from(me.user.email).toString('base64url'), 'nor the email')

  const registration = authenticator.register(creation)
  const added = await app.inject({ method: 'POST', url: '/passkeys/register', headers: bearer(me.access_token), payload: { response: registration, name: 'Laptop' } })
  t.equal(added.statusCode, 201, added.body)
  const passkey = added.json()
  t.equal(passkey.name, 'Laptop')
  t.equal(passkey.last_used_at, null)
  t.same(passkey.transports, ['internal'])
  t.equal(added.headers.location, `/passkeys/${passkey.id}`)
  t.notOk('credential_id' in passkey || 'public_key' in passkey, 'no credential id or key in the answer')

  // The same answer again: its challenge is spent.
  const again = await app.inject({ method: 'POST', url: '/passkeys/register', headers: bearer(me.access_token), payload: { response: registration } })
  t.equal(again.statusCode, 400)
  t.equal(again.json().code, 'invalid_passkey', 'a registration answer works once')

  const meNow = await app.inject({ method: 'GET', url: '/me', headers: bearer(me.access_token) })
  t.equal(meNow.json().mfa.passkeys, 1, 'GET /me counts it')
  const otherNow = await app.inject({ method: 'GET', url: '/me', headers: bearer(other.access_token) })
  t.equal(otherNow.statusCode, 401, 'adding a passkey ended the other session')
  t.match(await eventsOf(app, me.user.id, 'passkey.added'), [{ passkey: passkey.id, name: 'Laptop', sessions_ended: 'others' }], 'passkey.added written')
  t.equal((await eventsOf(app, me.user.id, 'passkey.added')).length, 1, 'once')

  // Options now exclude it, and the authenticator refuses to make a second one.
  const next = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(me.access_token) })
  t.same(next.json().excludeCredentials.map((item: { id: string }) => item.id), [authenticator.credentials[0]!.id], 'the registered passkey is excluded')
  t.throws(() => authenticator.register(next.json()), { name: 'InvalidStateError' })

  // Sign in: no email, the authenticator finds its own (discoverable) credential.
  const request = await loginOptions(app)
  t.notOk(request.allowCredentials?.length, 'no allowCredentials: discoverable')
  t.equal(request.rpId, 'localhost')
  const signedIn = await signIn(app, authenticator.authenticate(request))
  t.equal(signedIn.statusCode, 200, signedIn.body)
  const pair = signedIn.json()
  t.equal(pair.user.id, me.user.id)
  const claims = decodeJwt(pair.access_token)
  t.same(claims.amr, ['hwk', 'user'], 'amr: hardware key, user verified')
  t.equal(claims.fresh, true, 'a fresh login')
  const refreshed = await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: pair.refresh_token } })
  t.same(decodeJwt(refreshed.json().access_token).amr, ['hwk', 'user'], 'a refresh keeps the amr')
  t.match((await eventsOf(app, me.user.id, 'login.succeeded')).at(-1), { amr: ['hwk', 'user'], passkey: passkey.id }, 'login.succeeded with the passkey')

  const list = await app.inject({ method: 'GET', url: '/passkeys', headers: bearer(pair.access_token) })
  t.equal(list.json().items.length, 1)
  t.not(list.json().items[0].last_used_at, null, 'the sign-in is its last use')
})

t.test('sign-in with an email, without user verification, and with a counterless authenticator', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const authenticator = new SoftwareAuthenticator({ userVerification: false, signCount: 'zero' })
  await addPasskey(app, me, authenticator)

  const request = await loginOptions(app, `  ${me.user.email.toUpperCase()} `)
  t.same(request.allowCredentials.map((item: { id: string }) => item.id), [authenticator.credentials[0]!.id], 'the account\'s passkey is offered (email normalised)')
  const first = await signIn(app, authenticator.authenticate(request))
  t.equal(first.statusCode, 200, first.body)
  t.same(decodeJwt(first.json().access_token).amr, ['hwk'], 'no user verification: hwk alone')
  // An authenticator that keeps no counter (always 0) signs in again: 0 → 0 is allowed.
  const second = await signIn(app, authenticator.authenticate(await loginOptions(app, me.user.email)))
  t.equal(second.statusCode, 200, 'a counter that stays at 0 is not a clone')

  // An unknown email gets options of the same shape; nothing can answer them.
  const unknown = await loginOptions(app, 'nobody@example.com')
  t.equal(unknown.allowCredentials.length, 1, 'one credential offered for an unknown email too')
  t.same(Object.keys(unknown).sort(), Object.keys(request).sort(), 'the same members')
  const decoyAgain = await loginOptions(app, 'nobody@example.com')
  t.equal(decoyAgain.allowCredentials[0].id, unknown.allowCredentials[0].id, 'the same decoy at every ask')
  const answered = await signIn(app, authenticator.authenticate(unknown, { credentialId: authenticator.credentials[0]!.id }))
  t.equal(answered.statusCode, 401, 'a real passkey answering a decoy challenge is refused')
  t.equal(answered.json().code, 'invalid_credentials')
})

t.test('every refusal is 401 invalid_credentials, shaped as a wrong password', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const authenticator = new SoftwareAuthenticator()
  await addPasskey(app, me, authenticator)
  // Another email: failed logins are counted in one event per email and minute, whose reason is the first's.
  const wrongPassword = await app.inject({ method: 'POST', url: '/login', payload: { email: newUser().email, password: 'not the password' } })
  const shape = Object.keys(wrongPassword.json()).sort()

  const refused = async (what: string, response: unknown) => {
    const answer = await signIn(app, response)
    t.equal(answer.statusCode, 401, `${what}: 401`)
    t.equal(answer.json().code, 'invalid_credentials', `${what}: invalid_credentials`)
    t.same(Object.keys(answer.json()).sort(), shape, `${what}: the shape of a wrong password`)
  }
  await refused('another origin', authenticator.authenticate(await loginOptions(app), { origin: 'https://evil.example' }))
  await refused('another RP ID', authenticator.authenticate(await loginOptions(app), { rpId: 'evil.example' }))
  await refused('a bad signature', authenticator.authenticate(await loginOptions(app), { tamperSignature: true }))
  await refused('another ceremony type', authenticator.authenticate(await loginOptions(app), { type: 'webauthn.create' }))
  await refused('a challenge never issued', authenticator.authenticate(await loginOptions(app), { challenge: 'bm90LWlzc3VlZC1ieS11cw' }))
  await refused('no clientDataJSON challenge at all', { ...authenticator.authenticate(await loginOptions(app)), response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' } })

  const good = authenticator.authenticate(await loginOptions(app))
  t.equal((await signIn(app, good)).statusCode, 200, 'a right answer signs in')
  await refused('the same answer replayed', good)

  // The server keeps the count of that sign-in; an answer whose count is not above it is a clone's.
  const stored = authenticator.credentials[0]!.counter
  await refused('a counter that did not move forward', authenticator.authenticate(await loginOptions(app), { counter: stored }))
  await refused('a counter that went backwards', authenticator.authenticate(await loginOptions(app), { counter: stored - 1 }))

  // A challenge of registration is not one of sign-in.
  const creation = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(me.access_token) })
  await refused('a registration challenge', authenticator.authenticate(await loginOptions(app), { challenge: creation.json().challenge }))

  // Expired: the options are 5 minutes old.
  const stale = await loginOptions(app)
  await app.pool.query('UPDATE webauthn_challenges SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND')
  await refused('an expired challenge', authenticator.authenticate(stale))

  // Options for one account answered by another's passkey.
  const them = await registerAndLogin(app)
  const theirs = new SoftwareAuthenticator()
  await addPasskey(app, them, theirs)
  await refused('another account\'s passkey for options made for mine', theirs.authenticate(await loginOptions(app, me.user.email), { credentialId: theirs.credentials[0]!.id }))

  // An unknown credential: a passkey the server never saw (or removed).
  const stranger = new SoftwareAuthenticator()
  stranger.register({ ...creation.json(), excludeCredentials: [] })
  await refused('an unknown credential', stranger.authenticate(await loginOptions(app)))

  // A discoverable answer must carry the handle the passkey was made for.
  const handled = authenticator.authenticate(await loginOptions(app))
  await refused('another user handle', { ...handled, response: { ...handled.response, userHandle: theirs.credentials[0]!.userHandle } })

  t.ok((await eventsOf(app, me.user.id, 'login.failed')).some((details) => details.reason === 'passkey_refused'), 'login.failed with reason passkey_refused')
  t.equal((await signIn(app, authenticator.authenticate(await loginOptions(app)))).statusCode, 200, 'and the passkey still works after all that')
})

t.test('refused answers count toward the account\'s lockout', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const me = await registerAndLogin(app)
  const authenticator = new SoftwareAuthenticator()
  await addPasskey(app, me, authenticator)
  for (let i = 0; i < 3; i++) {
    const answer = await signIn(app, authenticator.authenticate(await loginOptions(app), { tamperSignature: true }))
    t.equal(answer.statusCode, 401, `refusal ${i + 1}: 401`)
  }
  const locked = await signIn(app, authenticator.authenticate(await loginOptions(app)))
  t.equal(locked.statusCode, 429, 'then even a right answer is refused, unchecked')
  t.equal(locked.json().code, 'rate_limited')
  t.ok(locked.headers['retry-after'], 'with Retry-After')
  const password = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
  t.equal(password.statusCode, 429, 'one lockout for passwords and passkeys')
})

t.test('a passkey as the second factor after a password', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  await enrolTotp(app, me)
  const withoutPasskey = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
  t.same(withoutPasskey.json().methods, ['totp', 'recovery_code'], 'no passkey yet: not offered')
  const noOptions = await app.inject({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: withoutPasskey.json().mfa_token } })
  t.equal(noOptions.statusCode, 404, 'options for an account without a passkey: 404')
  t.equal(noOptions.json().code, 'not_found')

  // A session from before TOTP is on keeps working (the enrolling one); add the passkey from it.
  const authenticator = new SoftwareAuthenticator()
  await addPasskey(app, me, authenticator)

  const challenge = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
  t.same(challenge.json().methods, ['totp', 'recovery_code', 'passkey'], 'now a passkey is offered')
  // Someone else's passkey is not offered to (nor counted for) another TOTP account.
  const plain = await registerAndLogin(app)
  await enrolTotp(app, plain)
  const plainLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: plain.user.email, password: plain.password } })
  t.same(plainLogin.json().methods, ['totp', 'recovery_code'], 'an account without passkeys is offered none')
  const mfaToken = challenge.json().mfa_token
  const options = await app.inject({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: mfaToken } })
  t.equal(options.statusCode, 200, options.body)
  t.same(options.json().allowCredentials.map((item: { id: string }) => item.id), [authenticator.credentials[0]!.id], 'the account\'s passkeys are allowed')

  // A refused answer counts as a wrong code, and is answered as a refused passkey.
  const bad = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: mfaToken, passkey_response: authenticator.authenticate(options.json(), { tamperSignature: true }) } })
  t.equal(bad.statusCode, 401)
  t.equal(bad.json().code, 'invalid_credentials')
  t.match(bad.json().message, /4 more tries/, 'the tries left are said')
  t.match(await eventsOf(app, me.user.id, 'mfa.failed'), [{ method: 'passkey', attempts_left: 4 }])

  // That answer spent its challenge: new options for the next one.
  const again = await app.inject({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: mfaToken } })
  const done = await app.inject({ method: 'POST', url: '/login/mfa?refresh=cookie', payload: { mfa_token: mfaToken, passkey_response: authenticator.authenticate(again.json()) } })
  t.equal(done.statusCode, 200, done.body)
  t.same(decodeJwt(done.json().access_token).amr, ['pwd', 'hwk'], 'amr: password and hardware key')
  t.match(String(done.headers['set-cookie']), /__Host-refresh=/, 'browser mode works as for a code')

  // The options of one login do not finish another.
  const otherLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
  const foreign = await app.inject({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: otherLogin.json().mfa_token } })
  const third = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
  const crossed = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: third.json().mfa_token, passkey_response: authenticator.authenticate(foreign.json()) } })
  t.equal(crossed.statusCode, 401, 'an answer to another login\'s options is refused')

  const unknownToken = await app.inject({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: 'x'.repeat(43) } })
  t.equal(unknownToken.statusCode, 401)
  t.equal(unknownToken.json().code, 'invalid_mfa_token')
  const two = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: mfaToken, code: '123456', passkey_response: authenticator.authenticate(again.json()) } })
  t.equal(two.statusCode, 400, 'a code and a passkey at once: 400')
  t.equal(two.json().code, 'validation_error')

  // A passkey alone signs in to the TOTP account too: it proves both factors.
  const alone = await signIn(app, authenticator.authenticate(await loginOptions(app)))
  t.equal(alone.statusCode, 200, 'a passkey sign-in asks for no code')
})

t.test('managing passkeys: list, rename, remove', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const laptop = new SoftwareAuthenticator()
  const phone = new SoftwareAuthenticator()
  const first = await addPasskey(app, me, laptop, 'Laptop')
  const second = await addPasskey(app, me, phone)
  t.match(second.name, /\S/, 'a default name when none is given')

  const list = await app.inject({ method: 'GET', url: '/passkeys', headers: bearer(me.access_token) })
  t.same(list.json().items.map((item: { id: number }) => item.id), [second.id, first.id], 'newest first')

  const renamed = await app.inject({ method: 'PATCH', url: `/passkeys/${first.id}`, headers: bearer(me.access_token), payload: { name: 'Work laptop' } })
  t.equal(renamed.statusCode, 200)
  t.equal(renamed.json().name, 'Work laptop')
  const same = await app.inject({ method: 'PATCH', url: `/passkeys/${first.id}`, headers: bearer(me.access_token), payload: { name: 'Work laptop' } })
  t.equal(same.statusCode, 200, 'the same name again is no 404')
  const empty = await app.inject({ method: 'PATCH', url: `/passkeys/${first.id}`, headers: bearer(me.access_token), payload: { name: '' } })
  t.equal(empty.statusCode, 400, 'an empty name: 400')

  // Someone else's passkey: 404 for every route, nothing changed.
  const them = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'PATCH', url: `/passkeys/${first.id}`, headers: bearer(them.access_token), payload: { name: 'Mine now' } })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: `/passkeys/${first.id}`, headers: bearer(them.access_token) })).statusCode, 404)
  t.same((await app.inject({ method: 'GET', url: '/passkeys', headers: bearer(them.access_token) })).json().items, [], 'their list is empty')

  // Removing needs a fresh token.
  const refreshed = await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: me.refresh_token } })
  const stale = await app.inject({ method: 'DELETE', url: `/passkeys/${first.id}`, headers: bearer(refreshed.json().access_token) })
  t.equal(stale.statusCode, 401)
  t.equal(stale.json().code, 'fresh_token_required')
  const registerStale = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(refreshed.json().access_token) })
  t.equal(registerStale.json().code, 'fresh_token_required', 'and so does adding one')

  const current = await login(app, me.user.email, me.password)
  const elsewhere = await login(app, me.user.email, me.password)
  const removed = await app.inject({ method: 'DELETE', url: `/passkeys/${first.id}`, headers: bearer(current.access_token) })
  t.equal(removed.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(elsewhere.access_token) })).statusCode, 401, 'removing ended the other sessions')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(current.access_token) })).json().mfa.passkeys, 1)
  t.match(await eventsOf(app, me.user.id, 'passkey.removed'), [{ passkey: first.id, name: 'Work laptop', sessions_ended: 'others' }])
  const gone = await signIn(app, laptop.authenticate(await loginOptions(app), { credentialId: laptop.credentials[0]!.id }))
  t.equal(gone.statusCode, 401, 'a removed passkey no longer signs in')
  t.equal((await app.inject({ method: 'DELETE', url: `/passkeys/${first.id}`, headers: bearer(current.access_token) })).statusCode, 404, 'twice: 404')

  // An account without a password keeps its last way to sign in.
  await app.pool.query('UPDATE users SET password_hash = NULL WHERE id = ?', [me.user.id])
  const last = await app.inject({ method: 'DELETE', url: `/passkeys/${second.id}`, headers: bearer(current.access_token) })
  t.equal(last.statusCode, 409)
  t.equal(last.json().code, 'last_sign_in_method')
  t.equal((await signIn(app, phone.authenticate(await loginOptions(app)))).statusCode, 200, 'and it still signs in')
})

t.test('registration refusals', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const authenticator = new SoftwareAuthenticator()
  const options = async (session: Session = me) => (await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(session.access_token) })).json()
  const register = (response: unknown, session: Session = me) => app.inject({ method: 'POST', url: '/passkeys/register', headers: bearer(session.access_token), payload: { response } })

  for (const [what, overrides] of [
    ['another origin', { origin: 'https://evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['a challenge never issued', { challenge: 'bm90LWlzc3VlZC1ieS11cw' }],
    ['the sign-in ceremony type', { type: 'webauthn.get' }],
  ] as const) {
    const answer = await register(authenticator.register(await options(), overrides))
    t.equal(answer.statusCode, 400, `${what}: 400`)
    t.equal(answer.json().code, 'invalid_passkey', `${what}: invalid_passkey`)
  }
  // Options made for another user: their challenge is not mine.
  const them = await registerAndLogin(app)
  const theirs = await register(new SoftwareAuthenticator().register(await options(them)))
  t.equal(theirs.statusCode, 400, 'an answer to another user\'s options')
  t.equal((await app.inject({ method: 'GET', url: '/passkeys', headers: bearer(me.access_token) })).json().items.length, 0, 'nothing was added')

  // A credential registered already (another account raced us to it): 409.
  const pending = authenticator.register(await options())
  const other = new SoftwareAuthenticator()
  await addPasskey(app, them, other)
  await app.pool.query('UPDATE passkeys SET credential_id = ? WHERE user_id = ?', [pending.id, them.user.id])
  const taken = await register(pending)
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'passkey_exists')

  const malformed = await app.inject({ method: 'POST', url: '/passkeys/register', headers: bearer(me.access_token), payload: { response: { id: 'x' } } })
  t.equal(malformed.statusCode, 400, 'a malformed answer: 400')
  t.equal(malformed.json().code, 'validation_error')

  // The limit: 25.
  await app.pool.query(`INSERT INTO passkeys (user_id, credential_id, public_key, aaguid, user_handle, name)
    SELECT ?, CONCAT('filler-', seq), 'AA', '00000000-0000-0000-0000-000000000000', 'AA', 'filler' FROM seq_1_to_25`, [me.user.id])
  const full = await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: bearer(me.access_token) })
  t.equal(full.statusCode, 409)
  t.equal(full.json().code, 'passkey_limit')
})

t.test('admins: a passkey sign-in is a login with a second factor', async (t) => {
  const app = await build(t, { MFA_REQUIRED_FOR_ADMINS: 'true' })
  const me = await registerAndLogin(app, newUser())
  await app.pool.query('UPDATE users SET role = \'admin\' WHERE id = ?', [me.user.id])
  const authenticator = new SoftwareAuthenticator()
  await addPasskey(app, await login(app, me.user.email, me.password), authenticator)
  const password = await login(app, me.user.email, me.password)
  const refusedAdmin = await app.inject({ method: 'GET', url: '/admin/events', headers: bearer(password.access_token) })
  t.equal(refusedAdmin.statusCode, 403, 'a password login has no admin rights')
  t.equal(refusedAdmin.json().code, 'mfa_required')
  t.match(refusedAdmin.json().message, /passkey/, 'and the message says a passkey would do')
  const passkey = await signIn(app, authenticator.authenticate(await loginOptions(app)))
  const allowed = await app.inject({ method: 'GET', url: '/admin/events', headers: bearer(passkey.json().access_token) })
  t.equal(allowed.statusCode, 200, 'a passkey login has them')
})

t.test('with REQUIRE_EMAIL_VERIFICATION, an unverified account is 403 after the passkey checks out', async (t) => {
  const app = await build(t, { REQUIRE_EMAIL_VERIFICATION: 'true' })
  const body = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: body })
  const [rows] = await app.pool.query('SELECT id FROM users WHERE email = ?', [body.email])
  const id = (rows as Array<{ id: number }>)[0]!.id
  await app.pool.query('UPDATE users SET email_verified_at = CURRENT_TIMESTAMP(3) WHERE id = ?', [id])
  const me = await login(app, body.email, body.password)
  const authenticator = new SoftwareAuthenticator()
  await addPasskey(app, me, authenticator)
  await app.pool.query('UPDATE users SET email_verified_at = NULL WHERE id = ?', [id])
  const answer = await signIn(app, authenticator.authenticate(await loginOptions(app)))
  t.equal(answer.statusCode, 403)
  t.equal(answer.json().code, 'email_not_verified')
  const wrong = await signIn(app, authenticator.authenticate(await loginOptions(app), { tamperSignature: true }))
  t.equal(wrong.statusCode, 401, 'a refused passkey is still 401: the 403 tells nothing to a forger')
})

t.test('the origin of the page must be one of WEBAUTHN_ORIGINS', async (t) => {
  const app = await build(t, { APP_URL: 'https://app.example.com', WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://app.example.com,https://admin.example.com' })
  const me = await registerAndLogin(app)
  const authenticator = new SoftwareAuthenticator({ rpId: 'example.com', origin: 'https://admin.example.com' })
  await addPasskey(app, me, authenticator)
  t.equal((await signIn(app, authenticator.authenticate(await loginOptions(app)))).statusCode, 200, 'an answer from the second origin')
  t.equal((await signIn(app, authenticator.authenticate(await loginOptions(app), { origin: 'https://example.com' }))).statusCode, 401,
    'the RP ID\'s own origin is not listed: refused')
  t.equal((await signIn(app, authenticator.authenticate(await loginOptions(app), { origin: ORIGIN }))).statusCode, 401, 'nor is localhost')
})
