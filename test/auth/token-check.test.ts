import { createHmac, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { bearer, build, decodeJwt, login, registerAndLogin, TEST_SECRET } from '../helper.js'

// API.md §2: every way a token can fail the per-request check, against GET /me, with the
// error code of the contract and the RFC 6750 challenge of §1.

type Claims = Record<string, unknown>

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWT built by hand: `header.payload.signature`, HMAC-signed with the header's HS* algorithm. */
function signJwt (header: Record<string, unknown>, payload: Claims, secret: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  const digest = ({ HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as Record<string, string>)[String(header.alg)]
  if (!digest) throw new Error(`signJwt: cannot sign ${String(header.alg)}`)
  return `${input}.${createHmac(digest, secret).update(input).digest('base64url')}`
}

const HS256 = { alg: 'HS256', typ: 'JWT' }
const now = () => Math.floor(Date.now() / 1000)
const without = (claims: Claims, name: string) => Object.fromEntries(Object.entries(claims).filter(([key]) => key !== name))

const me = (app: App, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/me', headers })
const meWith = (app: App, token: string) => me(app, bearer(token))

/** A 401 in the §1 error shape, with the given code and the RFC 6750 challenge. */
function assertUnauthorized (t: Test, response: LightMyRequestResponse, code: string, what = code) {
  t.equal(response.statusCode, 401, `${what}: 401`)
  const body = response.json()
  t.equal(body.code, code, `${what}: code ${code}`)
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: the error shape and nothing else`)
  t.equal(body.statusCode, 401, `${what}: statusCode in the body`)
  t.equal(body.error, 'Unauthorized', `${what}: error`)
  const challenge = String(response.headers['www-authenticate'] ?? '')
  if (code === 'authorization_required') {
    t.equal(challenge, 'Bearer realm="boardkit"', `${what}: WWW-Authenticate without error= (no token was sent)`)
  } else {
    t.match(challenge, /^Bearer realm="boardkit"/, `${what}: WWW-Authenticate Bearer realm="boardkit"`)
    t.match(challenge, /error="invalid_token"/, `${what}: error="invalid_token" (a token was sent)`)
  }
}

t.test('token check', async (t) => {
  const app = await build(t)
  const session = await registerAndLogin(app)
  const claims = decodeJwt(session.access_token)

  // The forgery code is right: the same claims, signed by hand with the right key, pass.
  t.test('control: a hand-signed token with the claims of a real one is accepted', async (t) => {
    const copy = signJwt(HS256, claims, TEST_SECRET)
    const response = await meWith(app, copy)
    t.equal(response.statusCode, 200, 'copied claims: 200')
    t.equal(response.json().id, session.user.id)
    const renewed = signJwt(HS256, { ...claims, jti: randomUUID(), iat: now(), exp: now() + 60 }, TEST_SECRET)
    t.equal((await meWith(app, renewed)).statusCode, 200, 'new jti and times: 200')
    t.equal((await meWith(app, session.access_token)).statusCode, 200, 'the real token: 200')
  })

  t.test('no Authorization header → authorization_required', async (t) => {
    assertUnauthorized(t, await me(app), 'authorization_required', 'missing header')
  })

  t.test('another scheme → authorization_required', async (t) => {
    assertUnauthorized(t, await me(app, { authorization: 'Basic xyz' }), 'authorization_required', 'Basic xyz')
    assertUnauthorized(t, await me(app, { authorization: `Token ${session.access_token}` }), 'authorization_required', 'Token <jwt>')
  })

  t.test('an empty Bearer token → token_invalid', async (t) => {
    assertUnauthorized(t, await me(app, { authorization: 'Bearer ' }), 'token_invalid', "'Bearer '")
  })

  t.test('garbage → token_invalid', async (t) => {
    for (const token of ['abc', 'a.b.c', `${session.access_token}x`, session.access_token.split('.').slice(0, 2).join('.')]) {
      assertUnauthorized(t, await meWith(app, token), 'token_invalid', `garbage ${token.slice(0, 20)}`)
    }
  })

  for (const alg of ['none', 'None', 'NONE']) {
    t.test(`alg ${alg} with real claims and no signature → token_invalid`, async (t) => {
      const unsigned = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}.`
      assertUnauthorized(t, await meWith(app, unsigned), 'token_invalid', `alg ${alg}`)
      // …and with the real token's signature left in place.
      const resigned = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}.${session.access_token.split('.')[2]}`
      assertUnauthorized(t, await meWith(app, resigned), 'token_invalid', `alg ${alg} with a signature`)
    })
  }

  t.test('HS256 with another key → token_invalid', async (t) => {
    assertUnauthorized(t, await meWith(app, signJwt(HS256, claims, 'another-secret-that-is-long-enough-for-hs256')), 'token_invalid')
    assertUnauthorized(t, await meWith(app, signJwt(HS256, claims, '')), 'token_invalid', 'empty key')
  })

  for (const alg of ['HS512', 'HS384']) {
    t.test(`${alg} with the right secret → token_invalid (only the configured algorithm)`, async (t) => {
      assertUnauthorized(t, await meWith(app, signJwt({ alg, typ: 'JWT' }, claims, TEST_SECRET)), 'token_invalid', alg)
    })
  }

  t.test('a tampered payload (role admin, signature kept) → token_invalid', async (t) => {
    const [header, , signature] = session.access_token.split('.')
    const tampered = `${header}.${b64url({ ...claims, role: 'admin' })}.${signature}`
    assertUnauthorized(t, await meWith(app, tampered), 'token_invalid', 'role admin')
    const otherUser = `${header}.${b64url({ ...claims, sub: String(session.user.id + 1) })}.${signature}`
    assertUnauthorized(t, await meWith(app, otherUser), 'token_invalid', 'another sub')
  })

  t.test('expired → token_expired', async (t) => {
    const expired = signJwt(HS256, { ...claims, jti: randomUUID(), iat: now() - 2000, exp: now() - 1000 }, TEST_SECRET)
    assertUnauthorized(t, await meWith(app, expired), 'token_expired')
    const justExpired = signJwt(HS256, { ...claims, jti: randomUUID(), iat: now() - 900, exp: now() - 5 }, TEST_SECRET)
    assertUnauthorized(t, await meWith(app, justExpired), 'token_expired', 'expired 5 s ago')
  })

  t.test('wrong iss → token_invalid', async (t) => {
    assertUnauthorized(t, await meWith(app, signJwt(HS256, { ...claims, iss: 'someone-else' }, TEST_SECRET)), 'token_invalid', 'iss someone-else')
    assertUnauthorized(t, await meWith(app, signJwt(HS256, { ...claims, iss: 'Boardkit' }, TEST_SECRET)), 'token_invalid', 'iss Boardkit')
  })

  t.test('wrong aud → token_invalid', async (t) => {
    assertUnauthorized(t, await meWith(app, signJwt(HS256, { ...claims, aud: 'another-api' }, TEST_SECRET)), 'token_invalid', 'aud another-api')
    assertUnauthorized(t, await meWith(app, signJwt(HS256, { ...claims, aud: ['another-api'] }, TEST_SECRET)), 'token_invalid', 'aud [another-api]')
  })

  t.test('a refresh token as the access token → wrong_token_type', async (t) => {
    assertUnauthorized(t, await meWith(app, session.refresh_token), 'wrong_token_type', 'refresh token at GET /me')
    const forged = signJwt(HS256, { ...claims, type: 'refresh' }, TEST_SECRET)
    assertUnauthorized(t, await meWith(app, forged), 'wrong_token_type', 'access claims with type refresh')
  })

  t.test('an access token at POST /refresh → wrong_token_type', async (t) => {
    const viaHeader = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(session.access_token) })
    assertUnauthorized(t, viaHeader, 'wrong_token_type', 'in the header')
    const viaBody = await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: session.access_token } })
    assertUnauthorized(t, viaBody, 'wrong_token_type', 'in the body')
    t.equal((await meWith(app, session.access_token)).statusCode, 200, 'the access token still works')
  })

  t.test('an unknown type → token_invalid', async (t) => {
    for (const type of ['id', 'Access', '', 1]) {
      assertUnauthorized(t, await meWith(app, signJwt(HS256, { ...claims, type }, TEST_SECRET)), 'token_invalid', `type ${JSON.stringify(type)}`)
    }
  })

  for (const name of ['sub', 'jti', 'sid', 'type', 'iat', 'exp', 'iss', 'aud']) {
    t.test(`missing ${name} → token_invalid`, async (t) => {
      const token = signJwt(HS256, without(claims, name), TEST_SECRET)
      assertUnauthorized(t, await meWith(app, token), 'token_invalid', `no ${name}`)
    })
  }

  t.test('malformed jti / sid → token_invalid', async (t) => {
    for (const [name, value] of [['jti', 'not-a-uuid'], ['jti', 42], ['sid', 'not-a-uuid'], ['sid', null]] as const) {
      const token = signJwt(HS256, { ...claims, [name]: value }, TEST_SECRET)
      assertUnauthorized(t, await meWith(app, token), 'token_invalid', `${name} ${JSON.stringify(value)}`)
    }
  })

  t.test('a sub that is not a user id → token_invalid', async (t) => {
    for (const sub of ['abc', '0', '-1', '1.5', ' 1', '01', '1e3', '', session.user.id]) {
      const token = signJwt(HS256, { ...claims, sub }, TEST_SECRET)
      assertUnauthorized(t, await meWith(app, token), 'token_invalid', `sub ${JSON.stringify(sub)}`)
    }
  })

  t.test('a sub of a user that does not exist → token_revoked', async (t) => {
    for (const sub of ['999999999', String(session.user.id + 1000)]) {
      const token = signJwt(HS256, { ...claims, sub }, TEST_SECRET)
      assertUnauthorized(t, await meWith(app, token), 'token_revoked', `sub ${sub}`)
    }
  })

  t.test('a blocklisted jti → token_revoked', async (t) => {
    const own = await registerAndLogin(app)
    const jti = String(decodeJwt(own.access_token).jti)
    // Only the jti, not the session: the check looks at the token's own id.
    await app.pool.query(
      'INSERT INTO token_blocklist (jti, kind, user_id, expires_at) VALUES (?, ?, ?, ?)',
      [jti, 'access', own.user.id, new Date(Date.now() + 3_600_000)],
    )
    assertUnauthorized(t, await meWith(app, own.access_token), 'token_revoked', 'jti blocklisted')
    const sibling = signJwt(HS256, { ...decodeJwt(own.access_token), jti: randomUUID() }, TEST_SECRET)
    t.equal((await meWith(app, sibling)).statusCode, 200, 'another jti of the same session still works')
  })

  t.test('the access token after POST /logout → token_revoked', async (t) => {
    const own = await registerAndLogin(app)
    t.equal((await meWith(app, own.access_token)).statusCode, 200, 'before logout: 200')
    const logout = await app.inject({ method: 'POST', url: '/logout', headers: bearer(own.access_token) })
    t.equal(logout.statusCode, 204, 'logout: 204')
    assertUnauthorized(t, await meWith(app, own.access_token), 'token_revoked', 'after logout')
  })

  t.test('another access token of a logged-out session → token_revoked (sid)', async (t) => {
    const own = await registerAndLogin(app)
    const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(own.refresh_token) })
    t.equal(refreshed.statusCode, 200, 'refresh: 200')
    const second = refreshed.json().access_token as string
    t.equal(decodeJwt(second).sid, decodeJwt(own.access_token).sid, 'the same session')
    t.not(decodeJwt(second).jti, decodeJwt(own.access_token).jti, 'another jti')
    t.equal((await meWith(app, second)).statusCode, 200, 'before logout: 200')
    const logout = await app.inject({ method: 'POST', url: '/logout', headers: bearer(own.access_token) })
    t.equal(logout.statusCode, 204, 'logout of the session: 204')
    assertUnauthorized(t, await meWith(app, second), 'token_revoked', 'the refreshed access token')
    const forged = signJwt(HS256, { ...decodeJwt(own.access_token), jti: randomUUID() }, TEST_SECRET)
    assertUnauthorized(t, await meWith(app, forged), 'token_revoked', 'any jti of the revoked sid')
  })

  t.test('a token of a deleted user → token_revoked', async (t) => {
    const own = await registerAndLogin(app)
    t.equal((await meWith(app, own.access_token)).statusCode, 200, 'before deletion: 200')
    await app.pool.query('DELETE FROM users WHERE id = ?', [own.user.id])
    assertUnauthorized(t, await meWith(app, own.access_token), 'token_revoked', 'user row deleted')
    const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(own.refresh_token) })
    assertUnauthorized(t, refreshed, 'token_revoked', 'their refresh token')
  })

  t.test('the first user is unaffected by the revocations of the others', async (t) => {
    const again = await login(app, session.user.email, session.password)
    t.equal((await meWith(app, again.access_token)).statusCode, 200)
    t.equal((await meWith(app, session.access_token)).statusCode, 200, 'the first session is still alive')
  })
})
