import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import ajvFormats from 'ajv-formats'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { buildApp, type App } from '../src/app.js'
import { randomBytes } from 'node:crypto'
import { bearer, build, decodeJwt, enrolTotp, freePort, newUser, registerAndLogin, testConfig, totpCode, type Session } from './helper.js'
import { CLIENT_ID, CLIENT_SECRET, startFakeIssuer } from './oidc-provider.js'
import { NO_CONTEXT } from '../src/repositories/events.js'
import { SoftwareAuthenticator } from './webauthn-authenticator.js'

// The contract test: for every operation in the generated OpenAPI document and every status it
// documents, make the live API answer with that status, then check the body against the
// documented schema (JSON Schema 2020-12, as OpenAPI 3.1 defines it) and the documented
// headers. A status that is documented but has no case here fails the test, so the document
// cannot promise what nobody has seen the API do.

interface MediaType { schema?: object }
interface ResponseObject { content?: Record<string, MediaType>, headers?: Record<string, unknown> }
interface Operation { operationId: string, responses: Record<string, ResponseObject>, security?: Array<Record<string, string[]>> }
interface Document { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, object> } }

const METRICS_TOKEN = 'contract-metrics-token-0123456789abcdef'

/** A request to make; built fresh for each use, so cases never share state. */
type Case = () => Promise<InjectOptions>

// Every operation and status, through several apps: far more than .taprc's 120 s on a machine
// that other suites keep busy.
t.setTimeout(400_000)

t.test('live responses match the OpenAPI document', async (t) => {
  // Sign in with a provider (API.md §17): an issuer on loopback that answers at once, in every app.
  const fake = await startFakeIssuer(t)
  const SPA = 'http://127.0.0.1:9/app/done'
  const oidc = {
    OIDC_PROVIDERS: JSON.stringify([{ id: 'fake', issuer: fake.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET }]),
    OIDC_REDIRECT_URIS: SPA,
  }
  // Metrics on, served on this port with the token (GET /metrics's 200 and 401).
  const app = await build(t, { ...oidc, METRICS_TOKEN })
  const databaseUrl = String(app.config.DATABASE_URL)
  // Same database, every per-IP limit at 1 a minute: the second request of a kind is a 429.
  const limited = await build(t, { ...oidc, DATABASE_URL: databaseUrl, RATE_LIMIT_AUTH: '1', RATE_LIMIT_REFRESH: '1', RATE_LIMIT_GLOBAL: '1' })
  // The database is a closed port: every route that needs it is a 503.
  // (buildApp directly: build() would try to create that database.)
  const down = await buildApp(testConfig({ ...oidc, DATABASE_URL: `mysql://root@127.0.0.1:${await freePort()}/boardkit` }))
  t.teardown(() => down.close())
  await down.ready()
  // Same database, logins need a verified email (API.md §10).
  const verifying = await build(t, { ...oidc, DATABASE_URL: databaseUrl, REQUIRE_EMAIL_VERIFICATION: 'true' })

  // Oversized headers are refused by Node's HTTP parser, which inject() bypasses: a real socket.
  const listening = await build(t, { ...oidc, DATABASE_URL: databaseUrl })
  await listening.listen({ host: '127.0.0.1', port: 0 })
  const { port } = listening.server.address() as { port: number }

  const document = app.swagger() as unknown as Document
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  ajvFormats.default(ajv)
  ajv.addKeyword('example') // an OpenAPI annotation, not a JSON Schema one
  // '#/components/schemas/X' points into the OpenAPI document; for Ajv it is 'components#/$defs/X'.
  const rewriteRefs = <T>(schema: T): T => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"components#/$defs/'))
  ajv.addSchema({ $id: 'components', $defs: rewriteRefs(document.components.schemas) })
  const validators = new Map<object, ValidateFunction>()
  const validatorFor = (schema: object): ValidateFunction => {
    const validate = validators.get(schema) ?? ajv.compile(rewriteRefs(schema))
    validators.set(schema, validate)
    return validate
  }

  // Actors, each made fresh where a case changes them.
  const user = () => registerAndLogin(app)
  const admin = async () => {
    const session = await registerAndLogin(app)
    await app.pool.query('UPDATE users SET role = \'admin\' WHERE id = ?', [session.user.id])
    return session
  }
  const boardOf = async (session: Session) => {
    const response = await app.inject({ method: 'POST', url: '/boards', headers: bearer(session.access_token), payload: { title: 'Contract', content: 'Body' } })
    return (response.json() as { id: number }).id
  }
  const MISSING = 999_999_999
  const BODY_LIMIT = 64 * 1024
  /** The headers of a browser-mode refresh: a fresh session's __Host-refresh cookie and X-Requested-With. */
  const refreshCookie = async () => {
    const body = newUser()
    await app.inject({ method: 'POST', url: '/register', payload: body })
    const response = await app.inject({ method: 'POST', url: '/login?refresh=cookie', payload: { email: body.email, password: body.password } })
    const cookie = /__Host-refresh=[^;]*/.exec(String(response.headers['set-cookie']))![0]
    return { cookie, 'x-requested-with': 'contract' }
  }
  /** A user with TOTP on (API.md §13), and what logging in as them needs. */
  const totpUser = async () => {
    const me = await user()
    return { ...me, ...await enrolTotp(app, me) }
  }
  // Two TOTP users made once (each costs three argon2 runs): one whose session the cases that
  // change nothing of it use, one that only logs in (a recovery-code login ends its other sessions).
  let enrolled: ReturnType<typeof totpUser> | undefined
  const enrolledUser = () => (enrolled ??= totpUser())
  let loggingIn: ReturnType<typeof totpUser> | undefined
  let recoveryCodesUsed = 0
  /** A challenge of a TOTP user's password login, and a recovery code that finishes it (a TOTP code works once a step). */
  const mfaLogin = async () => {
    const me = await (loggingIn ??= totpUser())
    const challenge = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
    return { mfa_token: String(challenge.json().mfa_token), recovery_code: me.recoveryCodes[recoveryCodesUsed++ % me.recoveryCodes.length]! }
  }
  /** A user who has set up TOTP but not enabled it yet, and the secret to make codes from. */
  const pendingTotp = async () => {
    const me = await user()
    const setup = await app.inject({ method: 'POST', url: '/mfa/totp/setup', headers: bearer(me.access_token) })
    return { ...me, secret: String(setup.json().secret) }
  }
  const MISSING_SESSION = '00000000-0000-7000-8000-000000000000'
  const sidOf = (session: Session) => String(decodeJwt(session.access_token).sid)
  const as = (session: Session) => bearer(session.access_token)
  // Personal access tokens (API.md §16), one per scope used below, made once.
  const keyOwner = await registerAndLogin(app)
  const keyWith = async (scope: string) => (await app.inject({ method: 'POST', url: '/api-keys', headers: as(keyOwner), payload: { name: 'contract', scopes: [scope] } })).json().token as string
  const keys = { profile: await keyWith('profile'), boardsRead: await keyWith('boards:read') }
  const apiKeyOf = async (session: Session) => (await app.inject({ method: 'POST', url: '/api-keys', headers: as(session), payload: { name: 'contract', scopes: ['profile'] } })).json() as { id: number }
  // A live one-time token, as the mail would carry it (the repository is how the mail gets it too).
  const tokenFor = async (purpose: 'password_reset' | 'email_verification') => {
    const me = await user()
    const token = await app.repos.oneTimeTokens.issue({ purpose, userId: me.user.id, email: me.user.email, ttl: 60_000, maxPerHour: 100 })
    return token!
  }

  // Passkeys (API.md §14), made with a software authenticator.
  const passkeyOptions = async (me: Session) => (await app.inject({ method: 'POST', url: '/passkeys/register/options', headers: as(me) })).json()
  /** A user with a passkey: the session, the authenticator holding it, and its id. */
  const passkeyUser = async () => {
    const me = await user()
    const authenticator = new SoftwareAuthenticator()
    const added = await app.inject({ method: 'POST', url: '/passkeys/register', headers: as(me), payload: { response: authenticator.register(await passkeyOptions(me)) } })
    return { ...me, authenticator, passkeyId: (added.json() as { id: number }).id }
  }
  /** The authenticator's answer to new sign-in options (discoverable). */
  const passkeyAnswer = async (authenticator: SoftwareAuthenticator, overrides = {}) =>
    authenticator.authenticate((await app.inject({ method: 'POST', url: '/login/passkey/options', payload: {} })).json(), overrides)
  /** Fills the user's passkeys up to the limit (25) with rows no authenticator holds. */
  const fillPasskeys = async (userId: number) => app.pool.query(`INSERT INTO passkeys (user_id, credential_id, public_key, aaguid, user_handle, name)
    SELECT ?, CONCAT('filler-', ?, '-', seq), 'AA', '00000000-0000-0000-0000-000000000000', 'AA', 'filler' FROM seq_1_to_25`, [userId, userId])

  /**
   * A sign-in with the fake issuer up to the provider's redirect back: the callback request, with
   * this browser's __Host-oidc cookie. `claims` go into its ID token (a new subject each time).
   */
  const oidcCallback = async (claims: Record<string, unknown> = {}): Promise<InjectOptions> => {
    fake.settings.claims = { sub: `contract-${randomBytes(6).toString('hex')}`, email: newUser().email, email_verified: true, ...claims }
    const started = await app.inject({ method: 'GET', url: `/auth/oidc/fake?redirect_uri=${encodeURIComponent(SPA)}` })
    const cookie = /__Host-oidc=[^;]*/.exec(String(started.headers['set-cookie']))![0]
    const back = new URL((await fetch(String(started.headers.location), { redirect: 'manual' })).headers.get('location')!)
    return { method: 'GET', url: `${back.pathname}${back.search}`, headers: { cookie } }
  }
  /** The exchange code a sign-in hands the browser. */
  const oidcCode = async (claims?: Record<string, unknown>) => {
    const response = await app.inject(await oidcCallback(claims))
    return new URLSearchParams(new URL(String(response.headers.location)).hash.slice(1)).get('code')!
  }
  /** An account made by a sign-in: no password, one identity. */
  const federatedUser = async () => {
    const session = (await app.inject({ method: 'POST', url: '/auth/oidc/exchange', payload: { code: await oidcCode() } })).json() as Session
    const identities = (await app.inject({ method: 'GET', url: '/me/identities', headers: as(session) })).json() as { items: Array<{ id: number }> }
    return { session, identityId: identities.items[0]!.id }
  }
  /** A user with a password and a linked identity. */
  const userWithIdentity = async () => {
    const me = await user()
    await app.repos.identities.link(me.user.id, { provider: 'fake', issuer: fake.issuer, subject: `linked-${randomBytes(6).toString('hex')}`, email: null, emailVerified: false, name: null }, NO_CONTEXT)
    const identities = (await app.inject({ method: 'GET', url: '/me/identities', headers: as(me) })).json() as { items: Array<{ id: number }> }
    return { me, identityId: identities.items[0]!.id }
  }

  const successByOperation: Record<string, Case> = {
    getHealth: async () => ({ method: 'GET', url: '/health' }),
    getReady: async () => ({ method: 'GET', url: '/ready' }),
    getJwks: async () => ({ method: 'GET', url: '/.well-known/jwks.json' }),
    register: async () => ({ method: 'POST', url: '/register', payload: newUser() }),
    login: async () => {
      const body = newUser()
      await app.inject({ method: 'POST', url: '/register', payload: body })
      // Browser mode, so that the documented Set-Cookie is there to check.
      return { method: 'POST', url: '/login?refresh=cookie', payload: { email: body.email, password: body.password } }
    },
    refresh: async () => ({ method: 'POST', url: '/refresh', headers: await refreshCookie() }),
    logout: async () => ({ method: 'POST', url: '/logout?scope=global', headers: as(await user()) }),
    getMe: async () => ({ method: 'GET', url: '/me', headers: as(await user()) }),
    listUsers: async () => ({ method: 'GET', url: '/users?limit=2', headers: as(await admin()) }),
    createUser: async () => ({ method: 'POST', url: '/users', headers: as(await admin()), payload: { ...newUser(), role: 'admin' } }),
    getUser: async () => { const me = await user(); return { method: 'GET', url: `/users/${me.user.id}`, headers: as(me) } },
    updateUser: async () => { const me = await user(); return { method: 'PATCH', url: `/users/${me.user.id}`, headers: as(me), payload: { name: 'Renamed' } } },
    deleteUser: async () => { const me = await user(); return { method: 'DELETE', url: `/users/${me.user.id}`, headers: as(me) } },
    changePassword: async () => {
      const me = await user()
      return { method: 'PUT', url: `/users/${me.user.id}/password`, headers: as(me), payload: { current_password: me.password, new_password: 'another long password' } }
    },
    listUserBoards: async () => { const me = await user(); await boardOf(me); return { method: 'GET', url: `/users/${me.user.id}/boards`, headers: as(me) } },
    listBoards: async () => { const me = await user(); await boardOf(me); return { method: 'GET', url: '/boards?limit=5', headers: as(me) } },
    createBoard: async () => ({ method: 'POST', url: '/boards', headers: as(await user()), payload: { title: 'New', content: '' } }),
    getBoard: async () => { const me = await user(); return { method: 'GET', url: `/boards/${await boardOf(me)}`, headers: as(me) } },
    replaceBoard: async () => { const me = await user(); return { method: 'PUT', url: `/boards/${await boardOf(me)}`, headers: as(me), payload: { title: 'Put', content: 'All' } } },
    updateBoard: async () => { const me = await user(); return { method: 'PATCH', url: `/boards/${await boardOf(me)}`, headers: as(me), payload: { title: 'Patched' } } },
    deleteBoard: async () => { const me = await user(); return { method: 'DELETE', url: `/boards/${await boardOf(me)}`, headers: as(me) } },
    forgotPassword: async () => ({ method: 'POST', url: '/password/forgot', payload: { email: (await user()).user.email } }),
    resetPassword: async () => ({ method: 'POST', url: '/password/reset', payload: { token: await tokenFor('password_reset'), new_password: 'a brand new password' } }),
    sendVerificationEmail: async () => ({ method: 'POST', url: '/email/verify/send', headers: as(await user()) }),
    verifyEmail: async () => ({ method: 'POST', url: '/email/verify', payload: { token: await tokenFor('email_verification') } }),
    listSessions: async () => ({ method: 'GET', url: '/sessions?limit=5', headers: as(await user()) }),
    endSession: async () => { const me = await user(); return { method: 'DELETE', url: `/sessions/${sidOf(me)}`, headers: as(me) } },
    listUserSessions: async () => { const me = await user(); return { method: 'GET', url: `/users/${me.user.id}/sessions`, headers: as(await admin()) } },
    endUserSession: async () => { const me = await user(); return { method: 'DELETE', url: `/users/${me.user.id}/sessions/${sidOf(me)}`, headers: as(await admin()) } },
    listUserEvents: async () => { const me = await user(); return { method: 'GET', url: `/users/${me.user.id}/events?limit=1`, headers: as(me) } },
    createApiKey: async () => ({ method: 'POST', url: '/api-keys', headers: as(await user()), payload: { name: 'contract', scopes: ['boards:read'], expires_in_days: 7 } }),
    listApiKeys: async () => { const me = await user(); await apiKeyOf(me); return { method: 'GET', url: '/api-keys', headers: as(me) } },
    getApiKey: async () => { const me = await user(); return { method: 'GET', url: `/api-keys/${(await apiKeyOf(me)).id}`, headers: as(me) } },
    revokeApiKey: async () => { const me = await user(); return { method: 'DELETE', url: `/api-keys/${(await apiKeyOf(me)).id}`, headers: as(me) } },
    listEvents: async () => ({ method: 'GET', url: `/admin/events?type=login.succeeded&since=${new Date(Date.now() - 60_000).toISOString()}`, headers: as(await admin()) }),
    getMetrics: async () => ({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } }),
    // Browser mode, so that the documented Set-Cookie is there to check.
    loginMfa: async () => ({ method: 'POST', url: '/login/mfa?refresh=cookie', payload: await mfaLogin() }),
    setupTotp: async () => ({ method: 'POST', url: '/mfa/totp/setup', headers: as(await user()) }),
    enableTotp: async () => { const me = await pendingTotp(); return { method: 'POST', url: '/mfa/totp/enable', headers: as(me), payload: { code: totpCode(me.secret) } } },
    disableTotp: async () => { const me = await totpUser(); return { method: 'POST', url: '/mfa/totp/disable', headers: as(me), payload: { current_password: me.password } } },
    // Its own session stays; the codes it replaces are nobody else's.
    regenerateRecoveryCodes: async () => ({ method: 'POST', url: '/mfa/recovery-codes', headers: as(await enrolledUser()) }),
    listOidcProviders: async () => ({ method: 'GET', url: '/auth/oidc/providers' }),
    startOidcSignIn: async () => ({ method: 'GET', url: `/auth/oidc/fake?redirect_uri=${encodeURIComponent(SPA)}` }),
    oidcCallback: async () => oidcCallback(),
    // Browser mode, so that the documented Set-Cookie is there to check.
    exchangeOidcCode: async () => ({ method: 'POST', url: '/auth/oidc/exchange?refresh=cookie', payload: { code: await oidcCode() } }),
    listIdentities: async () => { const { me } = await userWithIdentity(); return { method: 'GET', url: '/me/identities', headers: as(me) } },
    unlinkIdentity: async () => { const { me, identityId } = await userWithIdentity(); return { method: 'DELETE', url: `/me/identities/${identityId}`, headers: as(me) } },
    linkIdentity: async () => ({ method: 'POST', url: '/me/identities/fake/link', headers: as(await user()), payload: { redirect_uri: SPA } }),
    passkeyRegistrationOptions: async () => ({ method: 'POST', url: '/passkeys/register/options', headers: as(await user()) }),
    registerPasskey: async () => { const me = await user(); return { method: 'POST', url: '/passkeys/register', headers: as(me), payload: { response: new SoftwareAuthenticator().register(await passkeyOptions(me)), name: 'Contract' } } },
    listPasskeys: async () => ({ method: 'GET', url: '/passkeys', headers: as(await passkeyUser()) }),
    renamePasskey: async () => { const me = await passkeyUser(); return { method: 'PATCH', url: `/passkeys/${me.passkeyId}`, headers: as(me), payload: { name: 'Renamed' } } },
    deletePasskey: async () => { const me = await passkeyUser(); return { method: 'DELETE', url: `/passkeys/${me.passkeyId}`, headers: as(me) } },
    passkeyLoginOptions: async () => ({ method: 'POST', url: '/login/passkey/options', payload: {} }),
    // Browser mode, so that the documented Set-Cookie is there to check.
    loginPasskey: async () => ({ method: 'POST', url: '/login/passkey?refresh=cookie', payload: { response: await passkeyAnswer((await passkeyUser()).authenticator) } }),
    mfaPasskeyOptions: async () => {
      const me = await passkeyUser()
      await enrolTotp(app, me)
      const challenge = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
      return { method: 'POST', url: '/login/mfa/options', payload: { mfa_token: challenge.json().mfa_token } }
    },
  }

  // The error cases, by operation and status. 429 and 503 are generic (see below).
  const errorCases: Record<string, Record<string, Case>> = {
    register: {
      400: async () => ({ method: 'POST', url: '/register', payload: { ...newUser(), email: 'not-an-email' } }),
      409: async () => { const body = newUser(); await app.inject({ method: 'POST', url: '/register', payload: body }); return { method: 'POST', url: '/register', payload: { ...body, email: body.email.toUpperCase() } } },
    },
    login: {
      400: async () => ({ method: 'POST', url: '/login', payload: { email: 'a@example.com' } }),
      401: async () => ({ method: 'POST', url: '/login', payload: { email: (await user()).user.email, password: 'wrong password!' } }),
      // Sent to `verifying` (see targetOf): a new account's email is not verified yet.
      403: async () => { const me = await user(); return { method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } } },
    },
    forgotPassword: { 400: async () => ({ method: 'POST', url: '/password/forgot', payload: { email: 'not-an-email' } }) },
    resetPassword: { 400: async () => ({ method: 'POST', url: '/password/reset', payload: { token: await tokenFor('email_verification'), new_password: 'a brand new password' } }) },
    sendVerificationEmail: {
      // It takes no body, but a body sent anyway is parsed: broken JSON is a 400 malformed_json.
      400: async () => ({ method: 'POST', url: '/email/verify/send', headers: { ...as(await user()), 'content-type': 'application/json' }, payload: '{"x": ' }),
      401: async () => ({ method: 'POST', url: '/email/verify/send' }),
    },
    verifyEmail: { 400: async () => ({ method: 'POST', url: '/email/verify', payload: { token: await tokenFor('password_reset') } }) },
    refresh: {
      400: async () => ({ method: 'POST', url: '/refresh', payload: { refresh_token: '' } }),
      401: async () => ({ method: 'POST', url: '/refresh', headers: as(await user()) }),
      403: async () => ({ method: 'POST', url: '/refresh', headers: { cookie: (await refreshCookie()).cookie } }),
    },
    logout: {
      400: async () => ({ method: 'POST', url: '/logout?scope=everything', headers: as(await user()) }),
      401: async () => ({ method: 'POST', url: '/logout' }),
    },
    getMe: { 401: async () => ({ method: 'GET', url: '/me', headers: { authorization: 'Bearer not.a.jwt' } }) },
    listUsers: {
      400: async () => ({ method: 'GET', url: '/users?limit=0', headers: as(await admin()) }),
      401: async () => ({ method: 'GET', url: '/users' }),
      403: async () => ({ method: 'GET', url: '/users', headers: as(await user()) }),
    },
    createUser: {
      400: async () => ({ method: 'POST', url: '/users', headers: as(await admin()), payload: { ...newUser(), role: 'root' } }),
      401: async () => ({ method: 'POST', url: '/users', payload: newUser() }),
      403: async () => ({ method: 'POST', url: '/users', headers: as(await user()), payload: newUser() }),
      409: async () => ({ method: 'POST', url: '/users', headers: as(await admin()), payload: { ...newUser(), email: (await user()).user.email } }),
    },
    getUser: {
      400: async () => ({ method: 'GET', url: '/users/abc', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/users/1' }),
      403: async () => ({ method: 'GET', url: `/users/${(await user()).user.id}`, headers: as(await user()) }),
      404: async () => ({ method: 'GET', url: `/users/${MISSING}`, headers: as(await admin()) }),
    },
    updateUser: {
      400: async () => { const me = await user(); return { method: 'PATCH', url: `/users/${me.user.id}`, headers: as(me), payload: {} } },
      401: async () => ({ method: 'PATCH', url: '/users/1', payload: { name: 'X' } }),
      403: async () => ({ method: 'PATCH', url: `/users/${(await user()).user.id}`, headers: as(await user()), payload: { name: 'X' } }),
      404: async () => ({ method: 'PATCH', url: `/users/${MISSING}`, headers: as(await admin()), payload: { name: 'X' } }),
      409: async () => { const me = await user(); return { method: 'PATCH', url: `/users/${me.user.id}`, headers: as(me), payload: { email: (await user()).user.email } } },
    },
    deleteUser: {
      400: async () => ({ method: 'DELETE', url: '/users/0', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: '/users/1' }),
      403: async () => ({ method: 'DELETE', url: `/users/${(await user()).user.id}`, headers: as(await user()) }),
      404: async () => ({ method: 'DELETE', url: `/users/${MISSING}`, headers: as(await admin()) }),
      409: async () => {
        // The last admin may not delete themself: make this admin the only one.
        const only = await admin()
        await app.pool.query('UPDATE users SET role = \'user\' WHERE role = \'admin\' AND id <> ?', [only.user.id])
        return { method: 'DELETE', url: `/users/${only.user.id}`, headers: as(only) }
      },
    },
    changePassword: {
      400: async () => { const me = await user(); return { method: 'PUT', url: `/users/${me.user.id}/password`, headers: as(me), payload: { current_password: me.password, new_password: 'short' } } },
      401: async () => { const me = await user(); return { method: 'PUT', url: `/users/${me.user.id}/password`, headers: as(me), payload: { current_password: 'not my password', new_password: 'another long password' } } },
      403: async () => ({ method: 'PUT', url: `/users/${(await user()).user.id}/password`, headers: as(await user()), payload: { new_password: 'another long password' } }),
      404: async () => ({ method: 'PUT', url: `/users/${MISSING}/password`, headers: as(await admin()), payload: { new_password: 'another long password' } }),
    },
    listUserBoards: {
      400: async () => ({ method: 'GET', url: '/users/1/boards?limit=101', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/users/1/boards' }),
      404: async () => ({ method: 'GET', url: `/users/${MISSING}/boards`, headers: as(await user()) }),
    },
    listBoards: {
      400: async () => ({ method: 'GET', url: '/boards?cursor=tampered!', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/boards' }),
    },
    createBoard: {
      400: async () => ({ method: 'POST', url: '/boards', headers: as(await user()), payload: { title: '', content: 'x' } }),
      401: async () => ({ method: 'POST', url: '/boards', payload: { title: 'x', content: 'x' } }),
    },
    getBoard: {
      400: async () => ({ method: 'GET', url: '/boards/1.5', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/boards/1' }),
      404: async () => ({ method: 'GET', url: `/boards/${MISSING}`, headers: as(await user()) }),
    },
  }
  Object.assign(errorCases, {
    getMetrics: {
      401: async () => ({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer not-the-metrics-token' } }),
      // Sent to `verifying` (see targetOf), which has no METRICS_TOKEN.
      404: async () => ({ method: 'GET', url: '/metrics' }),
    },
    listSessions: {
      400: async () => ({ method: 'GET', url: '/sessions?cursor=tampered', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/sessions' }),
    },
    endSession: {
      400: async () => ({ method: 'DELETE', url: '/sessions/42', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: `/sessions/${MISSING_SESSION}` }),
      404: async () => ({ method: 'DELETE', url: `/sessions/${sidOf(await user())}`, headers: as(await user()) }),
    },
    listUserSessions: {
      400: async () => ({ method: 'GET', url: '/users/x/sessions', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/users/1/sessions' }),
      403: async () => ({ method: 'GET', url: `/users/${(await user()).user.id}/sessions`, headers: as(await user()) }),
      404: async () => ({ method: 'GET', url: `/users/${MISSING}/sessions`, headers: as(await admin()) }),
    },
    listUserEvents: {
      400: async () => ({ method: 'GET', url: '/users/1/events?type=no.such', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/users/1/events' }),
      403: async () => ({ method: 'GET', url: `/users/${(await user()).user.id}/events`, headers: as(await user()) }),
      404: async () => ({ method: 'GET', url: `/users/${MISSING}/events`, headers: as(await admin()) }),
    },
    loginMfa: {
      400: async () => { const { mfa_token: token } = await mfaLogin(); return { method: 'POST', url: '/login/mfa', payload: { mfa_token: token, recovery_code: 'not-a-recovery-code' } } },
      401: async () => ({ method: 'POST', url: '/login/mfa', payload: { mfa_token: 'A'.repeat(43), code: '123456' } }),
    },
    setupTotp: {
      // It takes no body, but a body sent anyway is parsed: broken JSON is a 400 malformed_json.
      400: async () => ({ method: 'POST', url: '/mfa/totp/setup', headers: { ...as(await user()), 'content-type': 'application/json' }, payload: '{"x": ' }),
      401: async () => ({ method: 'POST', url: '/mfa/totp/setup' }),
      409: async () => ({ method: 'POST', url: '/mfa/totp/setup', headers: as(await enrolledUser()) }),
    },
    enableTotp: {
      400: async () => { const me = await pendingTotp(); const code = totpCode(me.secret); return { method: 'POST', url: '/mfa/totp/enable', headers: as(me), payload: { code: code === '000000' ? '000001' : '000000' } } },
      401: async () => ({ method: 'POST', url: '/mfa/totp/enable', payload: { code: '123456' } }),
      409: async () => ({ method: 'POST', url: '/mfa/totp/enable', headers: as(await user()), payload: { code: '123456' } }),
    },
    disableTotp: {
      400: async () => ({ method: 'POST', url: '/mfa/totp/disable', headers: as(await enrolledUser()), payload: {} }),
      401: async () => ({ method: 'POST', url: '/mfa/totp/disable', headers: as(await enrolledUser()), payload: { current_password: 'not my password' } }),
      409: async () => { const me = await user(); return { method: 'POST', url: '/mfa/totp/disable', headers: as(me), payload: { current_password: me.password } } },
    },
    regenerateRecoveryCodes: {
      400: async () => ({ method: 'POST', url: '/mfa/recovery-codes', headers: { ...as(await enrolledUser()), 'content-type': 'application/json' }, payload: '{"x": ' }),
      401: async () => ({ method: 'POST', url: '/mfa/recovery-codes' }),
      409: async () => ({ method: 'POST', url: '/mfa/recovery-codes', headers: as(await user()) }),
    },
    createApiKey: {
      400: async () => ({ method: 'POST', url: '/api-keys', headers: as(await user()), payload: { name: 'contract', scopes: [] } }),
      401: async () => ({ method: 'POST', url: '/api-keys', payload: { name: 'contract', scopes: ['profile'] } }),
      403: async () => ({ method: 'POST', url: '/api-keys', headers: as(await user()), payload: { name: 'contract', scopes: ['admin'] } }),
    },
    listApiKeys: {
      400: async () => ({ method: 'GET', url: '/api-keys?limit=0', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/api-keys' }),
    },
    getApiKey: {
      400: async () => ({ method: 'GET', url: '/api-keys/x', headers: as(await user()) }),
      401: async () => ({ method: 'GET', url: '/api-keys/1' }),
      404: async () => ({ method: 'GET', url: `/api-keys/${(await apiKeyOf(await user())).id}`, headers: as(await user()) }),
    },
    revokeApiKey: {
      400: async () => ({ method: 'DELETE', url: '/api-keys/x', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: '/api-keys/1' }),
      404: async () => ({ method: 'DELETE', url: `/api-keys/${(await apiKeyOf(await user())).id}`, headers: as(await user()) }),
    },
    listEvents: {
      400: async () => ({ method: 'GET', url: '/admin/events?since=yesterday', headers: as(await admin()) }),
      401: async () => ({ method: 'GET', url: '/admin/events' }),
      403: async () => ({ method: 'GET', url: '/admin/events', headers: as(await user()) }),
    },
    startOidcSignIn: {
      400: async () => ({ method: 'GET', url: `/auth/oidc/fake?redirect_uri=${encodeURIComponent('https://evil.example/')}` }),
      404: async () => ({ method: 'GET', url: `/auth/oidc/nope?redirect_uri=${encodeURIComponent(SPA)}` }),
    },
    // No __Host-oidc cookie: no sign-in of this browser to go back to.
    oidcCallback: { 400: async () => ({ method: 'GET', url: '/auth/oidc/fake/callback?state=abc&code=def' }) },
    exchangeOidcCode: {
      400: async () => ({ method: 'POST', url: '/auth/oidc/exchange', payload: { code: 'A'.repeat(43) } }),
      // The code was handed out for an unverified email nobody had; then someone registered it.
      409: async () => {
        const email = newUser().email
        const code = await oidcCode({ email, email_verified: false })
        await app.inject({ method: 'POST', url: '/register', payload: newUser({ email }) })
        return { method: 'POST', url: '/auth/oidc/exchange', payload: { code } }
      },
    },
    listIdentities: { 401: async () => ({ method: 'GET', url: '/me/identities' }) },
    unlinkIdentity: {
      400: async () => ({ method: 'DELETE', url: '/me/identities/abc', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: '/me/identities/1' }),
      404: async () => ({ method: 'DELETE', url: `/me/identities/${MISSING}`, headers: as(await user()) }),
      409: async () => { const { session, identityId } = await federatedUser(); return { method: 'DELETE', url: `/me/identities/${identityId}`, headers: as(session) } },
    },
    linkIdentity: {
      400: async () => ({ method: 'POST', url: '/me/identities/fake/link', headers: as(await user()), payload: { redirect_uri: 'https://evil.example/' } }),
      401: async () => ({ method: 'POST', url: '/me/identities/fake/link', payload: { redirect_uri: SPA } }),
      404: async () => ({ method: 'POST', url: '/me/identities/nope/link', headers: as(await user()), payload: { redirect_uri: SPA } }),
    },
    passkeyRegistrationOptions: {
      // It takes no body, but a body sent anyway is parsed: broken JSON is a 400 malformed_json.
      400: async () => ({ method: 'POST', url: '/passkeys/register/options', headers: { ...as(await user()), 'content-type': 'application/json' }, payload: '{"x": ' }),
      401: async () => ({ method: 'POST', url: '/passkeys/register/options' }),
      409: async () => { const me = await user(); await fillPasskeys(me.user.id); return { method: 'POST', url: '/passkeys/register/options', headers: as(me) } },
    },
    registerPasskey: {
      400: async () => { const me = await user(); return { method: 'POST', url: '/passkeys/register', headers: as(me), payload: { response: new SoftwareAuthenticator().register(await passkeyOptions(me), { origin: 'https://evil.example' }) } } },
      401: async () => ({ method: 'POST', url: '/passkeys/register', payload: { response: new SoftwareAuthenticator().register(await passkeyOptions(await user())) } }),
      // The credential is registered already (a race another request won).
      409: async () => {
        const me = await user()
        const response = new SoftwareAuthenticator().register(await passkeyOptions(me))
        await app.pool.query('INSERT INTO passkeys (user_id, credential_id, public_key, aaguid, user_handle, name) VALUES (?, ?, \'AA\', \'00000000-0000-0000-0000-000000000000\', \'AA\', \'raced\')', [me.user.id, response.id])
        return { method: 'POST', url: '/passkeys/register', headers: as(me), payload: { response } }
      },
    },
    listPasskeys: { 401: async () => ({ method: 'GET', url: '/passkeys' }) },
    renamePasskey: {
      400: async () => { const me = await passkeyUser(); return { method: 'PATCH', url: `/passkeys/${me.passkeyId}`, headers: as(me), payload: { name: '' } } },
      401: async () => ({ method: 'PATCH', url: '/passkeys/1', payload: { name: 'x' } }),
      404: async () => ({ method: 'PATCH', url: `/passkeys/${MISSING}`, headers: as(await user()), payload: { name: 'x' } }),
    },
    deletePasskey: {
      400: async () => ({ method: 'DELETE', url: '/passkeys/abc', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: '/passkeys/1' }),
      404: async () => ({ method: 'DELETE', url: `/passkeys/${MISSING}`, headers: as(await user()) }),
      // No password, and this passkey is the only other way in.
      409: async () => {
        const me = await passkeyUser()
        await app.pool.query('UPDATE users SET password_hash = NULL WHERE id = ?', [me.user.id])
        return { method: 'DELETE', url: `/passkeys/${me.passkeyId}`, headers: as(me) }
      },
    },
    passkeyLoginOptions: { 400: async () => ({ method: 'POST', url: '/login/passkey/options', payload: { email: 5 } }) },
    loginPasskey: {
      400: async () => ({ method: 'POST', url: '/login/passkey', payload: { response: {} } }),
      401: async () => ({ method: 'POST', url: '/login/passkey', payload: { response: await passkeyAnswer((await passkeyUser()).authenticator, { tamperSignature: true }) } }),
      // Sent to `verifying` (see targetOf): a new account's email is not verified yet.
      403: async () => ({ method: 'POST', url: '/login/passkey', payload: { response: await passkeyAnswer((await passkeyUser()).authenticator) } }),
    },
    mfaPasskeyOptions: {
      400: async () => ({ method: 'POST', url: '/login/mfa/options', payload: {} }),
      401: async () => ({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: 'A'.repeat(43) } }),
      // A TOTP user without a passkey.
      404: async () => ({ method: 'POST', url: '/login/mfa/options', payload: { mfa_token: (await mfaLogin()).mfa_token } }),
    },
    endUserSession: {
      400: async () => ({ method: 'DELETE', url: '/users/1/sessions/nope', headers: as(await user()) }),
      401: async () => ({ method: 'DELETE', url: `/users/1/sessions/${MISSING_SESSION}` }),
      403: async () => { const other = await user(); return { method: 'DELETE', url: `/users/${other.user.id}/sessions/${sidOf(other)}`, headers: as(await user()) } },
      404: async () => { const me = await user(); return { method: 'DELETE', url: `/users/${me.user.id}/sessions/${MISSING_SESSION}`, headers: as(me) } },
    },
  })
  // PUT, PATCH and DELETE of a board share their error cases but for method and body.
  for (const [operationId, method, payload] of [['replaceBoard', 'PUT', { title: 'T', content: 'C' }], ['updateBoard', 'PATCH', { title: 'T' }], ['deleteBoard', 'DELETE', undefined]] as const) {
    const withBody = payload ? { payload } : {}
    errorCases[operationId] = {
      400: async () => ({ method, url: '/boards/-1', headers: as(await user()), ...withBody }),
      401: async () => ({ method, url: '/boards/1', ...withBody }),
      403: async () => ({ method, url: `/boards/${await boardOf(await user())}`, headers: as(await user()), ...withBody }),
      404: async () => ({ method, url: `/boards/${MISSING}`, headers: as(await admin()), ...withBody }),
    }
  }

  /** Error cases answered by another app than `app`. */
  const targetOf: Record<string, Record<string, App>> = { login: { 403: verifying }, loginPasskey: { 403: verifying }, getMetrics: { 404: verifying } }

  /** The documented response for a status: body schema and headers, checked on a live answer. */
  const checkResponse = (t: Test, response: LightMyRequestResponse, documented: ResponseObject, what: string) => {
    const schema = documented.content?.['application/json']?.schema
    const text = Object.entries(documented.content ?? {}).find(([type]) => type.startsWith('text/plain'))
    if (text) {
      // Prometheus's text format: the documented content type, and a body of # HELP/# TYPE lines and samples.
      t.equal(response.headers['content-type'], text[0], `${what}: ${text[0]}`)
      t.match(response.body, /^# HELP /, `${what}: the text format`)
    } else if (schema) {
      t.match(response.headers['content-type'], /^application\/json/, `${what}: JSON`)
      const validate = validatorFor(schema)
      const valid = validate(response.json())
      t.ok(valid, `${what}: the body matches the documented schema`, { errors: validate.errors, body: response.json() })
    } else {
      t.equal(response.body, '', `${what}: no body, as documented`)
    }
    // The headers documented as always present (RateLimit-* come with per-IP limits only).
    for (const header of Object.keys(documented.headers ?? {})) {
      if (header.startsWith('ratelimit-')) continue
      t.ok(response.headers[header], `${what}: documented header ${header} is sent`)
    }
  }

  /** A request with 17 KiB of headers over a socket, its answer shaped like inject()'s. */
  const withHugeHeaders = (options: InjectOptions) => new Promise<LightMyRequestResponse>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    let raw = ''
    socket.setEncoding('utf8').on('data', (chunk) => { raw += chunk }).on('error', reject).on('close', () => {
      const [head = '', body = ''] = raw.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
      resolve({ statusCode: Number(statusLine.split(' ')[1]), headers, body, json: () => JSON.parse(body) } as unknown as LightMyRequestResponse)
    })
    socket.end(`${options.method} ${options.url} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ${'x'.repeat(17 * 1024)}\r\n\r\n`)
  })

  /** The request of a case, sent until the expected status comes (at most `tries` times). */
  const answerOf = async (target: App, request: Case, status: number, tries = 1) => {
    let response: LightMyRequestResponse | undefined
    for (let i = 0; i < tries && response?.statusCode !== status; i++) response = await target.inject(await request())
    return response!
  }

  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const { operationId } = operation
      t.test(`${method.toUpperCase()} ${path} (${operationId})`, async (t) => {
        for (const [status, documented] of Object.entries(operation.responses)) {
          const expected = Number(status)
          const success = successByOperation[operationId]
          let response: LightMyRequestResponse
          if (expected === 429 && success) {
            response = await answerOf(limited, success, 429, 3)
          } else if (expected === 431 && success) {
            response = await withHugeHeaders(await success())
          } else if ((expected === 413 || expected === 415) && success) {
            // Any operation that may carry a body: the success request with a body too large or not JSON.
            const body = expected === 413
              ? { 'content-type': 'application/json', payload: JSON.stringify({ title: 'x'.repeat(BODY_LIMIT) }) }
              : { 'content-type': 'text/plain', payload: 'not JSON' }
            response = await answerOf(app, async () => {
              const options = await success()
              return { ...options, headers: { ...options.headers, 'content-type': body['content-type'] }, payload: body.payload }
            }, expected)
          } else if (expected === 503 && success) {
            response = await answerOf(down, success, 503)
          } else if (expected === 403 && success && !errorCases[operationId]?.[status]) {
            // Any operation that takes a token: a personal access token without the scope it needs.
            const allowed = (operation.security ?? []).flatMap((requirement) => requirement.apiKey ?? [])
            const token = allowed.includes('profile') ? keys.boardsRead : keys.profile
            response = await answerOf(app, async () => {
              const options = await success()
              return { ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } }
            }, 403)
          } else if (expected < 400 && success) {
            response = await answerOf(app, success, expected)
          } else if (errorCases[operationId]?.[status]) {
            response = await answerOf(targetOf[operationId]?.[status] ?? app, errorCases[operationId][status], expected)
          } else {
            t.fail(`${status} is documented but this test has no case that produces it`)
            continue
          }
          const what = `${status}`
          t.equal(response.statusCode, expected, `${what}: the live status`, { body: response.body })
          if (response.statusCode === expected) checkResponse(t, response, documented, what)
        }
      })
    }
  }

  // The converse: whatever a hostile client sends to an operation, the answer is a status that
  // operation documents, with the documented body and headers. Each operation's success request,
  // spoiled one way at a time.
  const spoiled = (options: InjectOptions): Array<[string, InjectOptions]> => {
    const [path, query] = String(options.url).split('?') as [string, string | undefined]
    const headers = { ...options.headers } as Record<string, string>
    const { authorization: _, ...anonymous } = headers
    const withBody = (contentType: string, payload: string): InjectOptions =>
      ({ ...options, headers: { ...headers, 'content-type': contentType }, payload })
    const variants: Array<[string, InjectOptions]> = [
      ['a text/plain body', withBody('text/plain', 'hello')],
      ['an XML body', withBody('application/xml', '<a/>')],
      ['a form body', withBody('application/x-www-form-urlencoded', 'a=1')],
      ['malformed JSON', withBody('application/json', '{"title": ')],
      ['a JSON array', withBody('application/json', '[1, 2]')],
      ['a __proto__ key', withBody('application/json', '{"__proto__": {"role": "admin"}}')],
      ['an oversized body', withBody('application/json', JSON.stringify({ title: 'x'.repeat(BODY_LIMIT) }))],
      ['a wrong Content-Length', { ...withBody('application/json', '{}'), headers: { ...headers, 'content-type': 'application/json', 'content-length': '10' } }],
      ['no token', { ...options, headers: anonymous }],
      ['a garbage token', { ...options, headers: { ...headers, authorization: 'Bearer x.y.z' } }],
      ['a Basic authorization', { ...options, headers: { ...headers, authorization: 'Basic dXNlcjpwYXNz' } }],
      ['a hostile query string', { ...options, url: `${path}?limit=abc&cursor=%00&scope[]=x&limit=2` }],
    ]
    if (/\/\d+(\/|$)/.test(path)) {
      for (const bad of ['abc', '-1', '0x10', '1e3', '99999999999999999999', '%00', '%E0%A4%A']) {
        variants.push([`the id ${bad}`, { ...options, url: path.replace(/\/\d+(?=\/|$)/g, `/${bad}`) + (query ? `?${query}` : '') }])
      }
    }
    return variants
  }

  t.test('answers to hostile requests are all documented for their operation', async (t) => {
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const success = successByOperation[operation.operationId]
        if (!success) continue
        for (const [what, options] of spoiled(await success())) {
          const response = await app.inject(options)
          const label = `${method.toUpperCase()} ${path} with ${what}: ${response.statusCode}`
          const documented = operation.responses[String(response.statusCode)]
          t.ok(documented, `${label} is documented`, { body: response.body })
          if (documented) checkResponse(t, response, documented, label)
        }
      }
    }
  })

  t.test('requests to no route get the documented error shape', async (t) => {
    const validate = validatorFor({ $ref: '#/components/schemas/Error' })
    for (const [method, url] of [['GET', '/nope'], ['POST', '/boards/1/extra'], ['PATCH', '/register'], ['GET', '/%E0%A4%A'], ['DELETE', '/']] as const) {
      const response = await app.inject({ method, url, headers: { 'content-type': 'text/plain' }, payload: 'x' })
      t.ok([400, 404].includes(response.statusCode), `${method} ${url}: ${response.statusCode}`)
      t.ok(validate(response.json()), `${method} ${url}: the Error shape`, { body: response.body })
    }
  })

  t.test('every case here is for a documented operation and status', async (t) => {
    const documented = new Map(Object.values(document.paths).flatMap((operations) =>
      Object.values(operations).map((operation) => [operation.operationId, Object.keys(operation.responses)] as const)))
    for (const operationId of Object.keys(successByOperation)) t.ok(documented.has(operationId), `${operationId} is documented`)
    for (const [operationId, cases] of Object.entries(errorCases)) {
      for (const status of Object.keys(cases)) t.ok(documented.get(operationId)?.includes(status), `${operationId} documents ${status}`)
    }
  })
})
