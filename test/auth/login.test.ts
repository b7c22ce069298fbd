import t, { type Test } from 'tap'
import argon2 from 'argon2'
import type { LightMyRequestResponse } from 'fastify'
import type { RowDataPacket } from 'mysql2/promise'
import type { App } from '../../src/app.js'
import { build, decodeJwt, newUser } from '../helper.js'

// API.md §3 (POST /login) and the token claims of §2.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const OWASP_PREFIX = '$argon2id$v=19$m=19456,t=2,p=1$'
const ACCESS_TTL = 900
const REFRESH_TTL = 1_209_600

const login = (app: App, email: string, password: string) =>
  app.inject({ method: 'POST', url: '/login', payload: { email, password } })

async function register (app: App, body = newUser()) {
  const response = await app.inject({ method: 'POST', url: '/register', payload: body })
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.body}`)
  return { ...body, id: (response.json() as { id: number }).id }
}

function decodeHeader (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
}

async function storedHash (app: App, id: number): Promise<string> {
  const [rows] = await app.pool.query<RowDataPacket[]>('SELECT password_hash FROM users WHERE id = ?', [id])
  return String(rows[0]?.password_hash)
}

function assertInvalidCredentials (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.statusCode, 401, `${what}: 401`)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: the error shape and nothing else`)
  t.equal(body.statusCode, 401, `${what}: statusCode`)
  t.equal(body.error, 'Unauthorized', `${what}: error`)
  t.equal(body.code, 'invalid_credentials', `${what}: code`)
  t.type(body.message, 'string', `${what}: message`)
  t.equal(response.headers['www-authenticate'], 'Bearer realm="boardkit"', `${what}: challenge without error= (no token was sent)`)
}

t.test('login', async (t) => {
  const app = await build(t)

  t.test('200 with the token pair and the user; claims as in API.md §2', async (t) => {
    const user = await register(app)
    const response = await login(app, user.email, user.password)
    t.equal(response.statusCode, 200)
    const body = response.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type', 'user'])
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, ACCESS_TTL)
    t.equal(body.refresh_expires_in, REFRESH_TTL)
    t.type(body.access_token, 'string')
    t.type(body.refresh_token, 'string')
    t.same(Object.keys(body.user).sort(), ['created_at', 'email', 'email_verified_at', 'id', 'name', 'role', 'updated_at'], 'user object without any hash')
    t.equal(body.user.id, user.id)
    t.equal(body.user.email, user.email)
    t.equal(body.user.role, 'user')
    t.notMatch(response.body, /argon2|password/i, 'no hash anywhere in the body')

    for (const token of [body.access_token, body.refresh_token]) {
      t.equal(token.split('.').length, 3, 'three JWT segments')
      t.same(decodeHeader(token), { alg: 'HS256', typ: 'JWT' }, 'header alg HS256')
    }

    const access = decodeJwt(body.access_token)
    const refresh = decodeJwt(body.refresh_token)
    t.same(Object.keys(access).sort(), ['amr', 'aud', 'auth_time', 'exp', 'fresh', 'iat', 'iss', 'jti', 'role', 'sid', 'sub', 'type'], 'access claims')
    t.same(access.amr, ['pwd'], 'amr: a password login (RFC 8176)')
    t.same(Object.keys(refresh).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub', 'type'], 'refresh claims')
    for (const [name, claims] of [['access', access], ['refresh', refresh]] as const) {
      t.equal(claims.sub, String(body.user.id), `${name}: sub is the user id as a string`)
      t.match(claims.jti, UUID, `${name}: jti is a UUID`)
      t.match(claims.sid, UUID, `${name}: sid is a UUID`)
      t.equal(claims.iss, 'boardkit', `${name}: iss`)
      t.equal(claims.aud, 'boardkit-api', `${name}: aud`)
      t.type(claims.iat, 'number', `${name}: iat`)
      t.type(claims.exp, 'number', `${name}: exp`)
      t.ok(Math.abs((claims.iat as number) - Date.now() / 1000) < 60, `${name}: iat is now`)
    }
    t.not(access.jti, refresh.jti, 'each token has its own jti')
    t.equal(access.sid, refresh.sid, 'both tokens share the session id')
    t.match(access.sid, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'sid is a UUIDv7')
    t.equal(access.type, 'access')
    t.equal(refresh.type, 'refresh')
    t.equal(access.fresh, true, 'a login access token is fresh')
    t.equal(access.role, 'user')
    t.notOk('fresh' in refresh, 'refresh token has no fresh claim')
    t.notOk('role' in refresh, 'refresh token has no role claim')
    t.equal((access.exp as number) - (access.iat as number), ACCESS_TTL, 'access TTL 15 min')
    t.equal((refresh.exp as number) - (refresh.iat as number), REFRESH_TTL, 'refresh TTL 14 days')

    const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${body.access_token}` } })
    t.equal(me.statusCode, 200, 'the access token works')
    t.equal(me.json().id, user.id)
  })

  t.test('two logins are two sessions with distinct ids', async (t) => {
    const user = await register(app)
    const first = (await login(app, user.email, user.password)).json()
    const second = (await login(app, user.email, user.password)).json()
    t.not(decodeJwt(first.access_token).sid, decodeJwt(second.access_token).sid)
    t.not(decodeJwt(first.access_token).jti, decodeJwt(second.access_token).jti)
  })

  t.test('the email is matched in any case and with surrounding spaces', async (t) => {
    const user = await register(app, newUser({ email: 'Ada.Lovelace@Example.com' }))
    for (const email of ['  ADA.LOVELACE@EXAMPLE.COM  ', 'ada.lovelace@example.com', '\tAda.Lovelace@Example.Com ']) {
      const response = await login(app, email, user.password)
      t.equal(response.statusCode, 200, `${JSON.stringify(email)}: 200`)
      t.equal(response.json().user.id, user.id, `${JSON.stringify(email)}: the same user`)
    }
  })

  t.test('wrong password and unknown email give the identical 401 invalid_credentials', async (t) => {
    const user = await register(app)
    const wrongPassword = await login(app, user.email, 'not the password')
    const unknownEmail = await login(app, `nobody-${user.id}@example.com`, user.password)
    assertInvalidCredentials(t, wrongPassword, 'wrong password')
    assertInvalidCredentials(t, unknownEmail, 'unknown email')
    t.same(wrongPassword.json(), unknownEmail.json(), 'the same body: nothing tells which emails have accounts')
    t.equal(wrongPassword.headers['www-authenticate'], unknownEmail.headers['www-authenticate'], 'the same challenge')
    // The password is compared exactly: no trimming or case folding.
    assertInvalidCredentials(t, await login(app, user.email, user.password.toUpperCase()), 'password in another case')
    assertInvalidCredentials(t, await login(app, user.email, ` ${user.password}`), 'password with a leading space')
  })

  t.test('passwords are stored as argon2id with m=19456, t=2, p=1', async (t) => {
    const user = await register(app)
    const hash = await storedHash(app, user.id)
    t.ok(hash.startsWith(OWASP_PREFIX), `stored hash starts with ${OWASP_PREFIX} (got ${hash.slice(0, 32)})`)
    t.notOk(hash.includes(user.password), 'not the password itself')
    t.equal((await login(app, user.email, user.password)).statusCode, 200, 'and verifies on login')
    t.equal(await storedHash(app, user.id), hash, 'a hash with the current parameters is not rewritten')
  })

  t.test('a hash with weaker parameters is re-hashed on a successful login', async (t) => {
    const user = await register(app)
    const weak = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 })
    t.ok(weak.startsWith('$argon2id$v=19$m=4096,t=1,p=1$'), 'the weak hash')
    await app.pool.query('UPDATE users SET password_hash = ? WHERE id = ?', [weak, user.id])
    t.equal(await storedHash(app, user.id), weak, 'the weak hash is stored')

    assertInvalidCredentials(t, await login(app, user.email, 'not the password'), 'wrong password against the weak hash')
    t.equal(await storedHash(app, user.id), weak, 'a failed login does not touch the hash')

    const response = await login(app, user.email, user.password)
    t.equal(response.statusCode, 200, 'the weak hash still verifies')
    const upgraded = await storedHash(app, user.id)
    t.not(upgraded, weak, 'the hash was replaced')
    t.match(upgraded, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'with m=19456, t=2, p=1')
    t.ok(await argon2.verify(upgraded, user.password), 'the new hash is of the same password')
    t.equal((await login(app, user.email, user.password)).statusCode, 200, 'and logging in again works')
    t.equal(await storedHash(app, user.id), upgraded, 'no further rewrite')
  })

  t.test('a corrupt stored hash is a failed login, not a 500', async (t) => {
    const user = await register(app)
    await app.pool.query('UPDATE users SET password_hash = ? WHERE id = ?', ['not-a-hash', user.id])
    assertInvalidCredentials(t, await login(app, user.email, user.password), 'corrupt hash')
  })
})
