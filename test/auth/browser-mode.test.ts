import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { assertUnauthorized, bearer, build, newUser } from '../helper.js'

// API.md §8: browser mode. The refresh token lives in an HttpOnly __Host- cookie; a cookie
// refresh needs X-Requested-With and an Origin we trust; logout clears the cookie.

const COOKIE = '__Host-refresh'
const XRW = { 'x-requested-with': 'fetch' }

function refreshCookieOf (t: Test, response: LightMyRequestResponse) {
  const header = [response.headers['set-cookie'] ?? []].flat().find((line) => line.startsWith(`${COOKIE}=`))
  t.ok(header, 'a Set-Cookie for __Host-refresh')
  return header ?? ''
}

async function cookieLogin (app: App) {
  const body = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: body })
  return app.inject({ method: 'POST', url: '/login?refresh=cookie', payload: { email: body.email, password: body.password } })
}

const tokenIn = (setCookie: string) => /^__Host-refresh=([^;]*)/.exec(setCookie)![1]!
const cookieRefresh = (app: App, token: string, headers: Record<string, string> = XRW) =>
  app.inject({ method: 'POST', url: '/refresh', headers: { cookie: `${COOKIE}=${token}`, ...headers } })

t.test('browser mode', async (t) => {
  const app = await build(t, { REFRESH_REUSE_GRACE: '0s', CORS_ORIGINS: 'https://app.example.com' })

  t.test('POST /login?refresh=cookie: the refresh token only in an HttpOnly, Secure, SameSite=Strict __Host- cookie', async (t) => {
    const response = await cookieLogin(app)
    t.equal(response.statusCode, 200, '200')
    const body = response.json()
    t.notOk('refresh_token' in body, 'no refresh_token in the body')
    t.ok(body.access_token, 'the access token is in the body')
    t.equal(body.refresh_expires_in, 14 * 86_400, 'refresh_expires_in still says how long the cookie lasts')
    const setCookie = refreshCookieOf(t, response)
    t.match(tokenIn(setCookie), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the cookie holds a JWT')
    for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/', `Max-Age=${14 * 86_400}`]) {
      t.ok(setCookie.split('; ').includes(attribute), attribute)
    }
    t.notMatch(setCookie, /Domain=/i, 'no Domain (a __Host- cookie may not have one)')
  })

  t.test('the default, and refresh=body, keep the refresh token in the body and set no cookie', async (t) => {
    for (const query of ['', '?refresh=body']) {
      const body = newUser()
      await app.inject({ method: 'POST', url: '/register', payload: body })
      const response = await app.inject({ method: 'POST', url: `/login${query}`, payload: { email: body.email, password: body.password } })
      t.equal(response.statusCode, 200, `${query || 'no query'}: 200`)
      t.ok(response.json().refresh_token, 'refresh_token in the body')
      t.equal(response.headers['set-cookie'], undefined, 'no cookie')
    }
    const bad = await app.inject({ method: 'POST', url: '/login?refresh=header', payload: { email: 'a@example.com', password: 'x' } })
    t.equal(bad.statusCode, 400, 'refresh=header: 400')
    t.equal(bad.json().code, 'validation_error', 'validation_error')
  })

  t.test('a cookie refresh rotates the cookie and leaves the refresh token out of the body', async (t) => {
    const first = tokenIn(refreshCookieOf(t, await cookieLogin(app)))
    const response = await cookieRefresh(app, first)
    t.equal(response.statusCode, 200, '200')
    t.notOk('refresh_token' in response.json(), 'no refresh_token in the body')
    const second = tokenIn(refreshCookieOf(t, response))
    t.not(second, first, 'a new refresh token in the cookie')
    t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(response.json().access_token) })).statusCode, 200, 'the new access token works')
    t.equal((await cookieRefresh(app, second)).statusCode, 200, 'the new cookie refreshes in turn')
  })

  t.test('reuse of a spent cookie after the grace period ends the session', async (t) => {
    const first = tokenIn(refreshCookieOf(t, await cookieLogin(app)))
    const rotated = await cookieRefresh(app, first)
    const second = tokenIn(refreshCookieOf(t, rotated))
    await new Promise((resolve) => setTimeout(resolve, 5))
    assertUnauthorized(t, await cookieRefresh(app, first), 'token_revoked', 'the spent cookie')
    assertUnauthorized(t, await cookieRefresh(app, second), 'token_revoked', 'the newer cookie of that session too')
    assertUnauthorized(t, await app.inject({ method: 'GET', url: '/me', headers: bearer(rotated.json().access_token) }), 'token_revoked', 'and its access token')
  })

  t.test('a cookie refresh without X-Requested-With is 403, and spends nothing', async (t) => {
    const token = tokenIn(refreshCookieOf(t, await cookieLogin(app)))
    const response = await cookieRefresh(app, token, {})
    t.equal(response.statusCode, 403, '403')
    t.equal(response.json().code, 'forbidden', 'forbidden')
    t.equal(response.headers['set-cookie'], undefined, 'no new cookie')
    t.equal((await cookieRefresh(app, token)).statusCode, 200, 'the cookie is still good for a proper refresh')
  })

  t.test('a cookie refresh from an Origin that is neither ours nor listed is 403', async (t) => {
    const token = tokenIn(refreshCookieOf(t, await cookieLogin(app)))
    for (const origin of ['https://evil.example', 'null', 'http://api.example.com:8080', 'https://app.example.com.evil.example']) {
      const response = await cookieRefresh(app, token, { ...XRW, host: 'api.example.com', origin })
      t.equal(response.statusCode, 403, `Origin ${origin}: 403`)
      t.equal(response.json().code, 'forbidden', 'forbidden')
    }
    const own = await cookieRefresh(app, token, { ...XRW, host: 'api.example.com', origin: 'http://api.example.com' })
    t.equal(own.statusCode, 200, 'our own origin: 200')
    const listed = await cookieRefresh(app, tokenIn(refreshCookieOf(t, own)), { ...XRW, origin: 'https://app.example.com' })
    t.equal(listed.statusCode, 200, 'an origin in CORS_ORIGINS: 200')
  })

  t.test('the header or the body wins over the cookie, without the cookie rules', async (t) => {
    const cookie = tokenIn(refreshCookieOf(t, await cookieLogin(app)))
    const body = newUser()
    await app.inject({ method: 'POST', url: '/register', payload: body })
    const pair = (await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })).json()
    const viaHeader = await app.inject({ method: 'POST', url: '/refresh', headers: { ...bearer(pair.refresh_token), cookie: `${COOKIE}=${cookie}` } })
    t.equal(viaHeader.statusCode, 200, 'Authorization header: 200 without X-Requested-With')
    t.ok(viaHeader.json().refresh_token, 'answered in the body')
    t.equal(viaHeader.headers['set-cookie'], undefined, 'the cookie is left alone')
    t.equal((await cookieRefresh(app, cookie)).statusCode, 200, 'the cookie was not spent')
  })

  t.test('no cookie, no header, no body: 401 authorization_required', async (t) => {
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/refresh', headers: XRW }), 'authorization_required', 'nothing presented')
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/refresh', headers: { ...XRW, cookie: 'other=1' } }), 'authorization_required', 'another cookie only')
  })

  t.test('POST /logout, any scope, clears the cookie', async (t) => {
    for (const scope of ['local', 'others', 'global']) {
      const login = await cookieLogin(app)
      const token = tokenIn(refreshCookieOf(t, login))
      const response = await app.inject({ method: 'POST', url: `/logout?scope=${scope}`, headers: bearer(login.json().access_token) })
      t.equal(response.statusCode, 204, `${scope}: 204`)
      const cleared = refreshCookieOf(t, response)
      t.equal(tokenIn(cleared), '', 'an empty value')
      t.ok(cleared.split('; ').includes('Max-Age=0'), 'Max-Age=0')
      if (scope !== 'others') assertUnauthorized(t, await cookieRefresh(app, token), 'token_revoked', `${scope}: the cookie's token is dead anyway`)
    }
  })

  t.test('credentialed CORS for the listed origin only', async (t) => {
    const preflight = (origin: string) => app.inject({
      method: 'OPTIONS', url: '/refresh',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
    })
    const listed = await preflight('https://app.example.com')
    t.equal(listed.headers['access-control-allow-origin'], 'https://app.example.com', 'the listed origin is allowed')
    t.equal(listed.headers['access-control-allow-credentials'], 'true', 'with credentials')
    t.match(String(listed.headers['access-control-allow-headers']), /x-requested-with/, 'X-Requested-With may be sent')
    const other = await preflight('https://evil.example')
    // (@fastify/cors still sends Allow-Credentials; without Allow-Origin the browser refuses anyway.)
    t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin is not allowed')
  })
})

t.test('CORS_ORIGINS=* never allows credentials', async (t) => {
  const app = await build(t, { CORS_ORIGINS: '*' })
  const response = await app.inject({ method: 'OPTIONS', url: '/refresh', headers: { origin: 'https://any.example', 'access-control-request-method': 'POST' } })
  t.equal(response.headers['access-control-allow-origin'], '*', 'any origin')
  t.equal(response.headers['access-control-allow-credentials'], undefined, 'no credentials')
  const login = await cookieLogin(app)
  const token = tokenIn(/__Host-refresh=[^;]*/.exec(String(login.headers['set-cookie']))![0])
  const refused = await cookieRefresh(app, token, { ...XRW, origin: 'https://any.example' })
  t.equal(refused.statusCode, 403, 'a cookie refresh from an arbitrary origin is still 403')
})
