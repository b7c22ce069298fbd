import t from 'tap'
import { bearer, build, login, newUser, registerAndLogin, type Session } from '../helper.js'
import type { App } from '../../src/app.js'

// API.md §16: personal access tokens. Made from a fresh login, shown once, held to their scopes
// on every route (the matrix below is generated from the OpenAPI document, so a new route
// cannot be forgotten), dead on the next request after a revocation or a cut-off, everywhere.

const SCOPES = ['boards:read', 'boards:write', 'users:read', 'profile', 'admin'] as const
const TOKEN = /^bk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/

interface Key { id: number, name: string, scopes: string[], prefix: string, token: string, last_used_at: string | null, expires_at: string | null }

async function makeKey (app: App, session: Session, scopes: readonly string[], extra: Record<string, unknown> = {}): Promise<Key> {
  const response = await app.inject({ method: 'POST', url: '/api-keys', headers: bearer(session.access_token), payload: { name: `key ${scopes.join(' ')}`, scopes, ...extra } })
  if (response.statusCode !== 201) throw new Error(`POST /api-keys: ${response.statusCode} ${response.body}`)
  return response.json()
}

async function makeAdmin (app: App): Promise<Session & { password: string }> {
  const body = newUser()
  const registered = await app.inject({ method: 'POST', url: '/register', payload: body })
  await app.pool.query("UPDATE users SET role = 'admin' WHERE id = ?", [registered.json().id])
  return { ...await login(app, body.email, body.password), password: body.password }
}

t.test('a key is made once, listed without its secret, used where its scope allows, revoked', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const made = await app.inject({ method: 'POST', url: '/api-keys', headers: bearer(me.access_token), payload: { name: 'CI export', scopes: ['boards:read'], expires_in_days: 30 } })
  t.equal(made.statusCode, 201)
  const key = made.json() as Key
  t.equal(made.headers.location, `/api-keys/${key.id}`)
  const one = await app.inject({ method: 'GET', url: `/api-keys/${key.id}`, headers: bearer(me.access_token) })
  t.equal(one.statusCode, 200, 'the Location answers')
  t.notOk('token' in one.json(), 'without the token')
  t.match(key.token, TOKEN, 'bk_<prefix>_<secret>, for secret scanners')
  t.equal(key.token.slice(3, 15), key.prefix, 'the prefix is the token\'s public part')
  t.ok(Math.abs(Date.parse(key.expires_at!) - Date.now() - 30 * 86_400_000) < 60_000, 'expires in 30 days')
  const [stored] = (await app.pool.query('SELECT secret_hash FROM api_keys WHERE id = ?', [key.id]))[0] as Array<{ secret_hash: string }>
  t.notOk(stored!.secret_hash.includes(key.token.slice(16)), 'only a hash of the secret is stored')

  const boards = await app.inject({ method: 'GET', url: '/boards', headers: bearer(key.token) })
  t.equal(boards.statusCode, 200, 'GET /boards with boards:read')
  const write = await app.inject({ method: 'POST', url: '/boards', headers: bearer(key.token), payload: { title: 'x', content: 'y' } })
  t.equal(write.statusCode, 403, 'POST /boards without boards:write')
  t.equal(write.json().code, 'insufficient_scope')
  t.equal(write.headers['www-authenticate'], 'Bearer realm="boardkit", error="insufficient_scope", scope="boards:write"', 'RFC 6750 names the scope needed')

  const listed = await app.inject({ method: 'GET', url: '/api-keys', headers: bearer(me.access_token) })
  t.equal(listed.statusCode, 200)
  const [item] = listed.json().items as Key[]
  t.same(Object.keys(item!).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'scopes'], 'no token, no hash')
  t.ok(item!.last_used_at, 'its last use is recorded')

  // Keys never manage keys, sessions, passwords or the account.
  for (const [method, url] of [['POST', '/api-keys'], ['GET', '/api-keys'], ['DELETE', `/api-keys/${key.id}`], ['GET', '/sessions'], ['POST', '/logout'], ['PUT', `/users/${me.user.id}/password`], ['DELETE', `/users/${me.user.id}`]] as const) {
    const response = await app.inject({ method, url, headers: bearer(key.token) })
    t.equal(response.statusCode, 403, `${method} ${url} with a key: 403`)
    t.equal(response.json().code, 'insufficient_scope')
  }

  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: bearer(me.access_token) })).statusCode, 204, 'revoked')
  const after = await app.inject({ method: 'GET', url: '/boards', headers: bearer(key.token) })
  t.equal(after.statusCode, 401, 'dead on the next request')
  t.equal(after.json().code, 'token_revoked')
  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: bearer(me.access_token) })).statusCode, 404, 'revoking twice: 404')
  t.same((await app.inject({ method: 'GET', url: '/api-keys', headers: bearer(me.access_token) })).json().items, [], 'no longer listed')
  const events = (await app.inject({ method: 'GET', url: `/users/${me.user.id}/events`, headers: bearer(me.access_token) })).json().items as Array<{ type: string, details: Record<string, unknown> }>
  t.same(events.slice(0, 2).map((event) => event.type), ['api_key.revoked', 'api_key.created'], 'both recorded in the audit log')
  t.same(events[1]!.details, { key: key.id, name: 'CI export', scopes: ['boards:read'] })
})

t.test('bad input and the rules of making keys', async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '1h' })
  const me = await registerAndLogin(app)
  const post = (payload: unknown, token = me.access_token) => app.inject({ method: 'POST', url: '/api-keys', headers: bearer(token), payload: payload as Record<string, unknown> })
  for (const payload of [{ name: 'x', scopes: [] }, { name: '', scopes: ['profile'] }, { name: 'x', scopes: ['root'] }, { name: 'x', scopes: ['profile', 'profile'] }, { name: 'x', scopes: ['profile'], expires_in_days: 0 }, { name: 'x', scopes: ['profile'], extra: 1 }]) {
    const response = await post(payload)
    t.equal(response.statusCode, 400, `${JSON.stringify(payload)}: 400`)
    t.equal(response.json().code, 'validation_error')
  }
  const admin = await post({ name: 'x', scopes: ['admin'] })
  t.equal(admin.statusCode, 403, 'a user cannot grant admin')
  t.equal(admin.json().code, 'forbidden')
  const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(me.refresh_token) })
  const notFresh = await post({ name: 'x', scopes: ['profile'] }, refreshed.json().access_token)
  t.equal(notFresh.statusCode, 401, 'a refreshed (not fresh) token cannot make keys')
  t.equal(notFresh.json().code, 'fresh_token_required')
  const other = await registerAndLogin(app)
  const key = await makeKey(app, me, ['profile'])
  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: bearer(other.access_token) })).statusCode, 404, 'another user\'s key: 404')
  t.equal((await app.inject({ method: 'DELETE', url: '/api-keys/0', headers: bearer(me.access_token) })).statusCode, 400, 'a malformed id: 400')
  for (const token of [`${key.token.slice(0, 16)}${'A'.repeat(43)}`, `bk_${'a'.repeat(12)}_${key.token.slice(16)}`, 'bk_short', `${key.token}x`]) {
    const response = await app.inject({ method: 'GET', url: '/me', headers: bearer(token) })
    t.equal(response.statusCode, 401, `${token.slice(0, 20)}…: 401`)
    t.equal(response.json().code, 'token_invalid')
  }
  const expired = await makeKey(app, me, ['profile'])
  await app.pool.query('UPDATE api_keys SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = ?', [expired.id])
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(expired.token) })).json().code, 'token_revoked', 'an expired key: 401 token_revoked')
})

t.test('an admin\'s key has admin rights only with the scope admin', async (t) => {
  const app = await build(t)
  const admin = await makeAdmin(app)
  const plain = await makeKey(app, admin, ['users:read', 'profile'])
  const withAdmin = await makeKey(app, admin, ['users:read', 'admin'])
  const someone = await registerAndLogin(app)
  const other = await app.inject({ method: 'GET', url: `/users/${someone.user.id}`, headers: bearer(plain.token) })
  t.equal(other.statusCode, 403, 'without admin: another user is out of reach')
  t.equal(other.json().code, 'forbidden')
  t.equal((await app.inject({ method: 'GET', url: `/users/${someone.user.id}`, headers: bearer(withAdmin.token) })).statusCode, 200, 'with admin: as the admin')
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: bearer(withAdmin.token) })).statusCode, 200)
  const list = await app.inject({ method: 'GET', url: '/users', headers: bearer(plain.token) })
  t.equal(list.statusCode, 403)
  t.equal(list.json().code, 'insufficient_scope')
})

t.test('every scope against every route: the OpenAPI document says which, the API does it', async (t) => {
  const app = await build(t)
  const admin = await makeAdmin(app)
  const keys = Object.fromEntries(await Promise.all(SCOPES.map(async (scope) => [scope, await makeKey(app, admin, [scope])] as const)))
  const document = app.swagger() as unknown as { paths: Record<string, Record<string, { operationId: string, security?: Array<Record<string, string[]>> }>> }
  let operations = 0
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const security = operation.security ?? []
      if (!security.some((requirement) => 'bearerAuth' in requirement)) continue
      if ('refreshCookie' in Object.assign({}, ...security)) {
        // POST /refresh takes a refresh token in the same header; a key is not one.
        const response = await app.inject({ method: 'POST', url: path, headers: bearer(keys.profile!.token) })
        t.equal(response.statusCode, 401, `${operation.operationId}: a key is not a refresh token`)
        continue
      }
      operations += 1
      const allowed = security.flatMap((requirement) => requirement.apiKey ?? [])
      // Ids that exist or not: the guard answers before anything reads them.
      const url = path.replace('{id}', String(admin.user.id)).replace('{sid}', '00000000-0000-7000-8000-000000000000')
      for (const scope of SCOPES) {
        const response = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: bearer(keys[scope]!.token) })
        const refused = response.statusCode === 403 && response.json().code === 'insufficient_scope'
        t.equal(refused, !allowed.includes(scope), `${operation.operationId} with ${scope}: ${allowed.includes(scope) ? 'let through' : '403 insufficient_scope'} (got ${response.statusCode})`)
        t.not(response.statusCode, 401, `${operation.operationId} with ${scope}: the key itself is good`)
      }
    }
  }
  t.ok(operations >= 20, `${operations} operations that take a token, each tried with each of ${SCOPES.length} scopes`)
})

t.test('a revocation, a global logout, a reset, a role change and a delete kill keys on every instance', async (t) => {
  const a = await build(t)
  const b = await build(t, { DATABASE_URL: String(a.config.DATABASE_URL) })
  const works = async (key: Key) => (await b.inject({ method: 'GET', url: '/me', headers: bearer(key.token) })).statusCode === 200

  const me = await registerAndLogin(a)
  let key = await makeKey(a, me, ['profile'])
  t.ok(await works(key), 'works through the other instance')
  await a.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: bearer(me.access_token) })
  t.notOk(await works(key), 'revoked on one instance: dead on the other')

  key = await makeKey(a, me, ['profile'])
  await a.inject({ method: 'POST', url: '/logout?scope=global', headers: bearer(me.access_token) })
  t.notOk(await works(key), 'a global logout')

  const again = await login(a, me.user.email, me.password)
  key = await makeKey(a, again, ['profile'])
  await a.pool.query("UPDATE users SET session_generation = session_generation + 1 WHERE id = ?", [me.user.id])
  t.notOk(await works(key), 'a cut-off (a reset, a password or role change) ends keys like sessions')

  const admin = await makeAdmin(a)
  const victim = await registerAndLogin(a)
  key = await makeKey(a, victim, ['profile'])
  await a.inject({ method: 'PATCH', url: `/users/${victim.user.id}`, headers: bearer(admin.access_token), payload: { role: 'admin' } })
  t.notOk(await works(key), 'a role change')

  const gone = await registerAndLogin(a)
  key = await makeKey(a, gone, ['profile'])
  await a.inject({ method: 'DELETE', url: `/users/${gone.user.id}`, headers: bearer(gone.access_token) })
  t.notOk(await works(key), 'the user deleted')
})

t.test('last use is written at most once a minute, not per request', async (t) => {
  const app = await build(t)
  const me = await registerAndLogin(app)
  const key = await makeKey(app, me, ['profile'])
  const lastUse = async () => ((await app.pool.query('SELECT last_used_at FROM api_keys WHERE id = ?', [key.id]))[0] as Array<{ last_used_at: Date | null }>)[0]!.last_used_at
  await app.inject({ method: 'GET', url: '/me', headers: bearer(key.token) })
  const first = await lastUse()
  t.ok(first, 'the first use is written')
  for (let i = 0; i < 5; i++) await app.inject({ method: 'GET', url: '/me', headers: bearer(key.token) })
  t.same(await lastUse(), first, 'the next uses within a minute write nothing')
  await app.pool.query('UPDATE api_keys SET last_used_at = NOW(3) - INTERVAL 2 MINUTE WHERE id = ?', [key.id])
  await app.inject({ method: 'GET', url: '/me', headers: bearer(key.token) })
  t.ok((await lastUse())!.getTime() > Date.now() - 10_000, 'a use after a minute is written again')
})
