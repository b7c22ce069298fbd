import t from 'tap'
import { build, decodeJwt, enrolTotp, freePort, login, newUser, totpCode } from '../helper.js'
import { Browser, CLIENT_ID, CLIENT_SECRET, fragmentOf, startFakeIssuer, startSilentServer, startTestProvider } from '../oidc-provider.js'

// API.md §17 against real providers on loopback: oidc-provider for the flows, a fake issuer for
// the ID tokens no honest provider would sign, a closed port and a silent one for outages.

t.setTimeout(180_000)

const apiPort = await freePort()
const API = `http://127.0.0.1:${apiPort}`
const SPA = 'http://127.0.0.1:9/app/done'
const callbackOf = (id: string) => `${API}/auth/oidc/${id}/callback`
const idp = await startTestProvider(t, [callbackOf('test')])
const fake = await startFakeIssuer(t)
const doomed = await startFakeIssuer(t)
const silent = await startSilentServer(t)
const closed = `http://127.0.0.1:${await freePort()}`
const client = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET }
const app = await build(t, {
  OIDC_PROVIDERS: JSON.stringify([
    { id: 'test', name: 'Test IdP', issuer: idp.issuer, ...client },
    { id: 'fake', issuer: fake.issuer, ...client },
    { id: 'doomed', issuer: doomed.issuer, ...client },
    { id: 'silent', issuer: silent, ...client },
    { id: 'down', issuer: closed, ...client },
  ]),
  OIDC_REDIRECT_URIS: SPA,
  OIDC_TIMEOUT: '1s',
})
await app.listen({ host: '127.0.0.1', port: apiPort })

const startUrl = (provider: string) => `${API}/auth/oidc/${provider}?redirect_uri=${encodeURIComponent(SPA)}`

/** A whole sign-in in a new browser: the fragment the SPA gets. */
async function signIn (provider: string, options: { login?: string, deny?: boolean } = {}) {
  const browser = new Browser()
  const end = await browser.walk(startUrl(provider), { stopAt: SPA, ...options })
  return { browser, fragment: fragmentOf(end.url) }
}

async function exchange (code: string, query = '') {
  const response = await fetch(`${API}/auth/oidc/exchange${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })
  return { status: response.status, body: await response.json() as Record<string, any>, headers: response.headers }
}

const call = async (method: string, path: string, token: string, body?: unknown) => {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) as Record<string, any> : null, headers: response.headers }
}

const eventsOf = async (type: string) => app.repos.events.list({ type }, 200)
const failures = async () => (await eventsOf('oidc.failed')).map((event) => event.details)

t.test('a first sign-in makes the account, a second finds it; the tokens say amr ["fed"]', async (t) => {
  idp.accounts.set('alice', { email: 'Alice@Example.test', email_verified: true, name: 'Alice Liddell' })
  const first = await signIn('test', { login: 'alice' })
  t.ok(first.fragment.code, 'redirect_uri#code=…', { fragment: first.fragment })
  const signedIn = await exchange(first.fragment.code!)
  t.equal(signedIn.status, 200, 'the exchange gives a token pair')
  t.same(decodeJwt(signedIn.body.access_token).amr, ['fed'])
  t.equal(decodeJwt(signedIn.body.access_token).fresh, true)
  t.equal(signedIn.body.user.email, 'alice@example.test', 'email from the ID token, lower-cased')
  t.equal(signedIn.body.user.name, 'Alice Liddell')
  t.ok(signedIn.body.user.email_verified_at, 'verified, as the provider said')

  const me = await call('GET', '/me', signedIn.body.access_token)
  t.equal(me.status, 200)
  const identities = await call('GET', '/me/identities', signedIn.body.access_token)
  t.equal(identities.body!.items.length, 1)
  t.match(identities.body!.items[0], { provider: 'test', issuer: idp.issuer, subject: 'alice', email: 'alice@example.test' })

  const again = await signIn('test', { login: 'alice' })
  const second = await exchange(again.fragment.code!)
  t.equal(second.body.user.id, signedIn.body.user.id, 'the same account')

  const login = await fetch(`${API}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'alice@example.test', password: 'any password at all' }) })
  t.equal(login.status, 401, 'an account made by a provider has no password to log in with')

  const registered = (await eventsOf('user.registered')).find((event) => event.subject_user_id === signedIn.body.user.id)
  t.match(registered?.details, { method: 'oidc', provider: 'test' })
  const logins = (await eventsOf('login.succeeded')).filter((event) => event.subject_user_id === signedIn.body.user.id)
  t.equal(logins.length, 2)
  t.match(logins[0]!.details, { amr: ['fed'], method: 'oidc', provider: 'test' })
})

t.test('the exchange in browser mode puts the refresh token in the cookie only', async (t) => {
  const { fragment } = await signIn('test', { login: 'cookie-mode' })
  const signedIn = await exchange(fragment.code!, '?refresh=cookie')
  t.equal(signedIn.status, 200)
  t.notOk('refresh_token' in signedIn.body)
  t.match(signedIn.headers.get('set-cookie'), /__Host-refresh=[^;]+;.*HttpOnly/i)
})

t.test('an exchange code works once', async (t) => {
  const { fragment } = await signIn('test', { login: 'replay' })
  t.equal((await exchange(fragment.code!)).status, 200)
  const replayed = await exchange(fragment.code!)
  t.equal(replayed.status, 400)
  t.equal(replayed.body.code, 'invalid_exchange_code')
  t.equal((await exchange('A'.repeat(43))).body.code, 'invalid_exchange_code', 'an unknown code alike')
})

t.test('a callback replayed, or the provider\'s code used again, signs nobody in', async (t) => {
  const browser = new Browser()
  const stopped = await browser.walk(startUrl('test'), { stopAt: callbackOf('test'), login: 'replayer' })
  const cookie = browser.cookiesOf(API).get('__Host-oidc')!
  const first = await browser.request(stopped.url)
  t.ok(fragmentOf(first.headers.get('location')!).code, 'the first callback succeeds')

  // The same callback URL with the same cookie: the state is spent.
  browser.cookiesOf(API).set('__Host-oidc', cookie)
  const replayed = await browser.request(stopped.url)
  t.equal(replayed.status, 400)
  t.equal((await replayed.json()).code, 'invalid_oidc_state')

  // A new sign-in of this browser, fed the old provider code: the provider refuses it.
  await browser.request(startUrl('test'))
  const state = browser.cookiesOf(API).get('__Host-oidc')!
  const url = new URL(stopped.url)
  url.searchParams.set('state', state)
  const reused = await browser.request(url.href)
  t.same(fragmentOf(reused.headers.get('location')!), { error: 'invalid_response' })
  t.ok((await failures()).some((details) => details.reason === 'invalid_response' && details.provider === 'test'), 'an oidc.failed event')
})

t.test('a state that is not this browser\'s is refused', async (t) => {
  const browser = new Browser()
  await browser.request(startUrl('test'))
  const wrong = await browser.request(`${callbackOf('test')}?state=${'x'.repeat(43)}&code=abc`)
  t.equal(wrong.status, 302)
  t.same(fragmentOf(wrong.headers.get('location')!), { error: 'invalid_state' })
  t.match(wrong.headers.get('set-cookie'), /__Host-oidc=;/, 'the cookie is cleared')

  const stranger = await new Browser().request(`${callbackOf('test')}?state=${'x'.repeat(43)}&code=abc`)
  t.equal(stranger.status, 400, 'without the cookie there is nowhere to go back to')
  t.equal((await stranger.json()).code, 'invalid_oidc_state')
  const reasons = (await failures()).map((details) => details.reason)
  t.ok(reasons.includes('invalid_state') && reasons.includes('no_state_cookie'), 'both recorded')
})

t.test('a denied consent comes back as access_denied', async (t) => {
  const { fragment } = await signIn('test', { login: 'denier', deny: true })
  t.same(fragment, { error: 'access_denied' })
  t.ok((await failures()).some((details) => details.reason === 'access_denied'))
})

t.test('an unverified email that is an account\'s does not get into it', async (t) => {
  const owner = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: owner })
  idp.accounts.set('mallory', { email: owner.email, email_verified: false, name: 'Mallory' })
  const { fragment } = await signIn('test', { login: 'mallory' })
  t.same(fragment, { error: 'account_exists' }, 'the callback hands out no code')

  // The same race at the exchange: the code was handed out, then the account appeared.
  const late = newUser()
  idp.accounts.set('late', { email: late.email, email_verified: false })
  const issued = await signIn('test', { login: 'late' })
  await app.inject({ method: 'POST', url: '/register', payload: late })
  const refused = await exchange(issued.fragment.code!)
  t.equal(refused.status, 409)
  t.equal(refused.body.code, 'account_exists')
  t.equal((await exchange(issued.fragment.code!)).body.code, 'invalid_exchange_code', 'and the code is spent')
})

t.test('a verified email links the account that has it', async (t) => {
  const owner = newUser()
  const registered = (await app.inject({ method: 'POST', url: '/register', payload: owner })).json()
  idp.accounts.set('owner', { email: owner.email, email_verified: true })
  const { fragment } = await signIn('test', { login: 'owner' })
  const signedIn = await exchange(fragment.code!)
  t.equal(signedIn.body.user.id, registered.id)
  const linked = (await eventsOf('identity.linked')).find((event) => event.subject_user_id === registered.id)
  t.match(linked?.details, { provider: 'test', via: 'verified_email' })
})

t.test('an account with TOTP on: the provider is the first factor, the code still the second', async (t) => {
  const owner = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: owner })
  const session = await login(app, owner.email, owner.password)
  const { secret, recoveryCodes } = await enrolTotp(app, session)
  idp.accounts.set('totp-owner', { email: owner.email, email_verified: true })
  const { fragment } = await signIn('test', { login: 'totp-owner' })
  const challenge = await exchange(fragment.code!)
  t.equal(challenge.status, 200)
  t.same(Object.keys(challenge.body).sort(), ['expires_in', 'methods', 'mfa_required', 'mfa_token'], 'no tokens: the challenge of POST /login')
  t.same(challenge.body.methods, ['totp', 'recovery_code'])
  t.equal((await app.repos.sessions.list(session.user.id, { limit: 10 })).length, 1, 'no session started by the provider alone')
  const finished = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: challenge.body.mfa_token, code: totpCode(secret, 1) } })
  t.equal(finished.statusCode, 200, finished.body)
  t.same(decodeJwt(finished.json().access_token).amr, ['fed', 'otp'], 'the session says how: the provider, then the code')
  // The password login still says pwd: the first factor is the challenge's own. (A recovery code:
  // the TOTP codes of this step and the next are spent.)
  const byPassword = (await app.inject({ method: 'POST', url: '/login', payload: { email: owner.email, password: owner.password } })).json()
  const withCode = await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: byPassword.mfa_token, recovery_code: recoveryCodes[0] } })
  t.same(decodeJwt(withCode.json().access_token).amr, ['pwd', 'otp'])
})

t.test('a signed-in user links a provider, then unlinks it; never the last way in', async (t) => {
  const body = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: body })
  const session = (await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })).json()
  idp.accounts.set('linker', { email: 'elsewhere@example.test', email_verified: false })

  const browser = new Browser()
  const started = await browser.request(`${API}/me/identities/test/link`, {
    method: 'POST', headers: { authorization: `Bearer ${session.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uri: SPA }),
  })
  t.equal(started.status, 200)
  const { authorization_url: authorizationUrl } = await started.json()
  const end = await browser.walk(authorizationUrl, { stopAt: SPA, login: 'linker' })
  t.same(fragmentOf(end.url), { linked: 'test' })
  const identities = await call('GET', '/me/identities', session.access_token)
  t.equal(identities.body!.items.length, 1)

  // The unverified email no longer matters: the identity is linked.
  const { fragment } = await signIn('test', { login: 'linker' })
  t.equal((await exchange(fragment.code!)).body.user.id, session.user.id)

  // Another account cannot link the same provider account.
  const other = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: other })
  const otherSession = (await app.inject({ method: 'POST', url: '/login', payload: { email: other.email, password: other.password } })).json()
  const thief = new Browser()
  const link = await (await thief.request(`${API}/me/identities/test/link`, {
    method: 'POST', headers: { authorization: `Bearer ${otherSession.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uri: SPA }),
  })).json()
  t.same(fragmentOf((await thief.walk(link.authorization_url, { stopAt: SPA, login: 'linker' })).url), { error: 'identity_taken' })

  const id = identities.body!.items[0].id
  t.equal((await call('DELETE', `/me/identities/${id}`, otherSession.access_token)).status, 404, 'another\'s identity is not found')
  t.equal((await call('DELETE', `/me/identities/${id}`, session.access_token)).status, 204, 'the account has a password: unlinked')
  t.equal((await call('GET', '/me/identities', session.access_token)).body!.items.length, 0)
  t.ok((await eventsOf('identity.unlinked')).some((event) => event.subject_user_id === session.user.id))

  // An account made by a provider has nothing else.
  const only = await signIn('test', { login: 'only-way' })
  const onlySession = (await exchange(only.fragment.code!)).body
  const [identity] = (await call('GET', '/me/identities', onlySession.access_token)).body!.items
  const refused = await call('DELETE', `/me/identities/${identity.id}`, onlySession.access_token)
  t.equal(refused.status, 409)
  t.equal(refused.body!.code, 'last_sign_in_method')
})

t.test('linking needs a fresh token', async (t) => {
  const body = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: body })
  const session = (await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })).json()
  const refreshed = (await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: session.refresh_token } })).json()
  const response = await call('POST', '/me/identities/test/link', refreshed.access_token, { redirect_uri: SPA })
  t.equal(response.status, 401)
  t.equal(response.body!.code, 'fresh_token_required')
})

t.test('ID tokens that do not verify are refused', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, typeof fake.settings]> = [
    ['a nonce that is not this sign-in\'s', { claims: { nonce: 'not-the-nonce' } }],
    ['an expired ID token', { claims: { iat: now - 3600, exp: now - 1800 } }],
    ['another audience', { claims: { aud: 'someone-else' } }],
    ['another issuer', { claims: { iss: 'http://127.0.0.1:1' } }],
    ['a signature by a key the issuer does not publish', { foreignKey: true }],
  ]
  for (const [what, settings] of cases) {
    fake.settings.claims = settings.claims
    fake.settings.foreignKey = settings.foreignKey
    const { fragment } = await signIn('fake')
    t.same(fragment, { error: 'invalid_response' }, what)
  }
  fake.settings.claims = undefined
  fake.settings.foreignKey = undefined
  const honest = await signIn('fake')
  t.ok(honest.fragment.code, 'the same issuer\'s honest token is taken')
  const recorded = (await failures()).filter((details) => details.provider === 'fake')
  t.equal(recorded.length, cases.length, 'each recorded as oidc.failed')
})

t.test('a provider that is down or silent: 503, or service_unavailable for the browser', async (t) => {
  const down = await fetch(startUrl('down'), { redirect: 'manual' })
  t.equal(down.status, 503)
  t.equal((await down.json()).code, 'service_unavailable')

  const started = Date.now()
  const hanging = await fetch(startUrl('silent'), { redirect: 'manual' })
  t.equal(hanging.status, 503)
  t.ok(Date.now() - started < 5000, 'answered by the deadline (OIDC_TIMEOUT=1s), not when the provider wakes up')

  // Discovered, then gone when the browser comes back with the code.
  const browser = new Browser()
  const stopped = await browser.walk(startUrl('doomed'), { stopAt: callbackOf('doomed') })
  await doomed.close()
  const back = await browser.request(stopped.url)
  t.same(fragmentOf(back.headers.get('location')!), { error: 'service_unavailable' })
  const reasons = (await failures()).filter((details) => ['down', 'silent', 'doomed'].includes(String(details.provider))).map((details) => details.reason)
  t.same(reasons.sort(), ['service_unavailable', 'service_unavailable', 'service_unavailable'])
})

t.test('only configured providers and listed redirect URIs', async (t) => {
  const unknown = await fetch(`${API}/auth/oidc/nope?redirect_uri=${encodeURIComponent(SPA)}`, { redirect: 'manual' })
  t.equal(unknown.status, 404)
  const elsewhere = await fetch(`${API}/auth/oidc/test?redirect_uri=${encodeURIComponent('https://evil.example/steal')}`, { redirect: 'manual' })
  t.equal(elsewhere.status, 400)
  t.equal((await elsewhere.json()).code, 'validation_error')
  const started = await fetch(startUrl('test'), { redirect: 'manual' })
  t.equal(started.status, 302)
  const location = new URL(started.headers.get('location')!)
  t.equal(location.origin, idp.issuer)
  t.equal(location.searchParams.get('code_challenge_method'), 'S256')
  t.ok(location.searchParams.get('nonce') && location.searchParams.get('state'))
  t.match(started.headers.get('set-cookie'), /^__Host-oidc=[^;]+; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  const providers = await (await fetch(`${API}/auth/oidc/providers`)).json()
  t.same(providers.items.map((item: { id: string }) => item.id), ['test', 'fake', 'doomed', 'silent', 'down'])
})
