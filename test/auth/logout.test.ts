import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { assertUnauthorized, bearer, build, decodeJwt, login, registerAndLogin, type Session } from '../helper.js'

// API.md §3 (POST /logout ?scope=local|others|global): the revocation takes effect on the very
// next request, for access and refresh tokens alike, and across instances (§2).

const logout = (app: App, token: string, scope?: string) =>
  app.inject({ method: 'POST', url: scope === undefined ? '/logout' : `/logout?scope=${scope}`, headers: bearer(token) })
const me = (app: App, token: string) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })
const refresh = (app: App, token: string) => app.inject({ method: 'POST', url: '/refresh', headers: bearer(token) })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function assertNoContent (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.statusCode, 204, `${what}: 204`)
  t.equal(response.body, '', `${what}: no body`)
}

/** The session's access token works and its refresh token rotates; returns the rotated pair. */
async function assertAlive (t: Test, app: App, session: Session, what: string): Promise<Session> {
  t.equal((await me(app, session.access_token)).statusCode, 200, `${what}: access token works`)
  const rotated = await refresh(app, session.refresh_token)
  t.equal(rotated.statusCode, 200, `${what}: refresh token rotates`)
  const pair = rotated.json() as Session
  t.equal((await me(app, pair.access_token)).statusCode, 200, `${what}: the rotated access token works`)
  return pair
}

async function assertDead (t: Test, app: App, session: Session, what: string) {
  assertUnauthorized(t, await me(app, session.access_token), 'token_revoked', `${what}: access token`)
  assertUnauthorized(t, await refresh(app, session.refresh_token), 'token_revoked', `${what}: refresh token`)
}

/** One user, logged in twice: two sessions. */
async function twoSessions (app: App) {
  const first = await registerAndLogin(app)
  const second = await login(app, first.user.email, first.password)
  return { first, second, email: first.user.email, password: first.password }
}

t.test('logout', async (t) => {
  const app = await build(t)

  for (const scope of ['local', undefined]) {
    t.test(`scope=${scope ?? '(default)'} ends this session only`, async (t) => {
      const { first, second } = await twoSessions(app)
      t.not(decodeJwt(first.access_token).sid, decodeJwt(second.access_token).sid, 'two sessions')
      assertNoContent(t, await logout(app, first.access_token, scope), 'logout')
      await assertDead(t, app, first, 'this session')
      await assertAlive(t, app, second, 'the other session')
      assertUnauthorized(t, await logout(app, first.access_token, scope), 'token_revoked', 'logging out twice with one token')
    })
  }

  t.test('scope=local after a rotation kills the rotated and the spent tokens of the session', async (t) => {
    const { first } = await twoSessions(app)
    const rotated = await refresh(app, first.refresh_token)
    t.equal(rotated.statusCode, 200)
    const pair = rotated.json() as Session
    assertNoContent(t, await logout(app, first.access_token, 'local'), 'logout with the older access token')
    await assertDead(t, app, pair, 'the rotated pair')
    assertUnauthorized(t, await refresh(app, first.refresh_token), 'token_revoked', 'the spent refresh token')
  })

  t.test('scope=others ends every other session, this one lives', async (t) => {
    const { first, second, email, password } = await twoSessions(app)
    const third = await login(app, email, password)
    assertNoContent(t, await logout(app, first.access_token, 'others'), 'logout')
    await assertDead(t, app, second, 'the second session')
    await assertDead(t, app, third, 'the third session')
    const pair = await assertAlive(t, app, first, 'this session')
    const again = await refresh(app, pair.refresh_token)
    t.equal(again.statusCode, 200, 'this session keeps rotating')

    const later = await login(app, email, password)
    await assertAlive(t, app, later, 'a session begun after the logout')
  })

  t.test('scope=global ends all sessions; logging in right after works', async (t) => {
    const { first, second, email, password } = await twoSessions(app)
    // Start at the beginning of a second, so the logout and the next login share it: the
    // cut-off must not be second-granular (JWT `iat` is).
    const intoSecond = Date.now() % 1000
    if (intoSecond > 100) await sleep(1000 - intoSecond + 5)
    const loggedOutAt = Date.now()
    assertNoContent(t, await logout(app, first.access_token, 'global'), 'logout')
    const next = await login(app, email, password)
    t.equal(decodeJwt(next.access_token).iat, Math.floor(loggedOutAt / 1000), 'the new login is in the same second as the logout')

    await assertDead(t, app, first, 'this session')
    await assertDead(t, app, second, 'the other session')
    const pair = await assertAlive(t, app, next, 'the session begun right after the logout')
    await assertDead(t, app, first, 'the old session, still')
    await assertDead(t, app, second, 'the other old session, still')
    t.equal((await me(app, pair.access_token)).statusCode, 200, 'the new session is still alive')
  })

  t.test('an invalid scope is 400 validation_error and logs nothing out', async (t) => {
    const { first } = await twoSessions(app)
    for (const scope of ['everything', 'LOCAL', '']) {
      const response = await logout(app, first.access_token, scope)
      t.equal(response.statusCode, 400, `scope=${JSON.stringify(scope)}: 400`)
      const body = response.json()
      t.equal(body.code, 'validation_error', `scope=${JSON.stringify(scope)}: validation_error`)
      t.equal(body.error, 'Bad Request')
      t.notMatch(response.body, /stack|sql/i, 'nothing leaks')
    }
    await assertAlive(t, app, first, 'the session')
  })

  t.test('logout needs an access token', async (t) => {
    const { first } = await twoSessions(app)
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/logout' }), 'authorization_required', 'no Authorization header')
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/logout?scope=global' }), 'authorization_required', 'no header, scope=global')
    assertUnauthorized(t, await logout(app, first.refresh_token), 'wrong_token_type', 'a refresh token')
    assertUnauthorized(t, await logout(app, first.refresh_token, 'global'), 'wrong_token_type', 'a refresh token, scope=global')
    await assertAlive(t, app, first, 'the session after the refused logouts')
  })
})

t.test('two instances on one database', async (t) => {
  const a = await build(t)
  const b = await build(t, { DATABASE_URL: a.config.DATABASE_URL })
  t.equal(b.config.DATABASE_URL, a.config.DATABASE_URL, 'one database')

  const session = await registerAndLogin(a)
  t.equal((await me(b, session.access_token)).statusCode, 200, 'a token from A works on B')
  assertNoContent(t, await logout(a, session.access_token), 'logout via A')
  assertUnauthorized(t, await me(b, session.access_token), 'token_revoked', 'GET /me via B')
  assertUnauthorized(t, await refresh(b, session.refresh_token), 'token_revoked', 'refresh via B')

  // The other scopes hold across instances too.
  const first = await login(a, session.user.email, session.password)
  const second = await login(b, session.user.email, session.password)
  assertNoContent(t, await logout(b, second.access_token, 'others'), 'scope=others via B')
  await assertDead(t, a, first, 'the session from A, seen by A')
  await assertAlive(t, a, second, 'the session from B, seen by A')
})
