import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { assertUnauthorized, bearer, build, decodeJwt, login, registerAndLogin, type Session } from '../helper.js'

// API.md §2 (tokens) and §3 (POST /refresh): rotation, one winner among concurrent rotations,
// and reuse of a spent refresh token after the grace period revoking the whole session.

const refresh = (app: App, token: string) => app.inject({ method: 'POST', url: '/refresh', headers: bearer(token) })
const refreshWithBody = (app: App, token: string) => app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: token } })
const me = (app: App, token: string) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })
const logout = (app: App, token: string) => app.inject({ method: 'POST', url: '/logout', headers: bearer(token) })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A token pair response of /login or /refresh, parsed. */
function pairOf (t: Test, response: LightMyRequestResponse, what: string): Session {
  t.equal(response.statusCode, 200, `${what}: 200`)
  return response.json()
}

t.test('refresh', async (t) => {
  const app = await build(t)

  t.test('rotation: a new pair of the same session, the access token not fresh', async (t) => {
    const session = await registerAndLogin(app)
    const response = await refresh(app, session.refresh_token)
    const pair = pairOf(t, response, 'refresh with the Bearer header')
    const body = response.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type', 'user'], 'same shape as login')
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 15 * 60, 'access TTL 15 min')
    t.equal(body.refresh_expires_in, 14 * 24 * 60 * 60, 'refresh TTL 14 days')
    t.equal(body.user.id, session.user.id)
    t.equal(body.user.email, session.user.email)
    t.notMatch(response.body, /argon2|password/i, 'no hash in the response')

    const oldAccess = decodeJwt(session.access_token)
    const oldRefresh = decodeJwt(session.refresh_token)
    const newAccess = decodeJwt(pair.access_token)
    const newRefresh = decodeJwt(pair.refresh_token)
    t.equal(oldAccess.fresh, true, 'the login access token is fresh')
    t.equal(newAccess.type, 'access')
    t.equal(newRefresh.type, 'refresh')
    t.equal(newAccess.fresh, false, 'the refreshed access token is not fresh')
    t.equal(newAccess.sid, oldAccess.sid, 'same sid (access)')
    t.equal(newRefresh.sid, oldRefresh.sid, 'same sid (refresh)')
    t.equal(newAccess.sub, String(session.user.id))
    t.equal(newRefresh.sub, String(session.user.id))
    const jtis = [oldAccess.jti, oldRefresh.jti, newAccess.jti, newRefresh.jti]
    t.equal(new Set(jtis).size, 4, 'every token has its own jti')
    t.not(pair.access_token, session.access_token)
    t.not(pair.refresh_token, session.refresh_token)

    t.equal((await me(app, pair.access_token)).statusCode, 200, 'the new access token works')
  })

  t.test('the refresh token may come in the body', async (t) => {
    const session = await registerAndLogin(app)
    const pair = pairOf(t, await refreshWithBody(app, session.refresh_token), 'refresh with {refresh_token}')
    t.equal(decodeJwt(pair.access_token).sid, decodeJwt(session.access_token).sid, 'same sid')
    t.equal(decodeJwt(pair.access_token).fresh, false)
    pairOf(t, await refreshWithBody(app, pair.refresh_token), 'the rotated refresh token rotates in turn')
  })

  t.test('no token at all is 401 authorization_required', async (t) => {
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/refresh' }), 'authorization_required', 'no header, no body')
    assertUnauthorized(t, await app.inject({ method: 'POST', url: '/refresh', payload: {} }), 'authorization_required', 'an empty JSON body')
  })

  t.test('an access token is not a refresh token', async (t) => {
    const session = await registerAndLogin(app)
    assertUnauthorized(t, await refresh(app, session.access_token), 'wrong_token_type', 'access token as Bearer')
    assertUnauthorized(t, await refreshWithBody(app, session.access_token), 'wrong_token_type', 'access token in the body')
    pairOf(t, await refresh(app, session.refresh_token), 'the session is untouched')
  })

  t.test('a spent refresh token is refused; within the grace window the session lives on', async (t) => {
    const session = await registerAndLogin(app)
    const pair = pairOf(t, await refresh(app, session.refresh_token), 'first rotation')
    assertUnauthorized(t, await refresh(app, session.refresh_token), 'token_revoked', 'the spent refresh token')
    assertUnauthorized(t, await refreshWithBody(app, session.refresh_token), 'token_revoked', 'the spent refresh token in the body')
    t.equal((await me(app, pair.access_token)).statusCode, 200, 'the new access token still works')
    t.equal((await me(app, session.access_token)).statusCode, 200, 'the old access token is not revoked by a rotation')
    const next = pairOf(t, await refresh(app, pair.refresh_token), 'the new refresh token still rotates')
    t.equal((await me(app, next.access_token)).statusCode, 200)
  })

  t.test('10 concurrent refreshes of one token: exactly one wins', async (t) => {
    for (let round = 1; round <= 3; round += 1) {
      const session = await registerAndLogin(app)
      // Warm the pool first, so the ten requests really overlap at the database instead of
      // queuing for new connections one after the other (which would hide a check-then-act race).
      await Promise.all(Array.from({ length: 10 }, () => me(app, session.access_token)))
      const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(app, session.refresh_token)))
      const winners = responses.filter((response) => response.statusCode === 200)
      const losers = responses.filter((response) => response.statusCode !== 200)
      t.equal(winners.length, 1, `round ${round}: one 200`)
      t.equal(losers.length, 9, `round ${round}: nine refused`)
      for (const [i, response] of losers.entries()) assertUnauthorized(t, response, 'token_revoked', `round ${round}, loser ${i + 1}`)
      const winner = winners[0]?.json() as Session | undefined
      if (!winner) continue
      t.equal((await me(app, winner.access_token)).statusCode, 200, `round ${round}: the winner's access token works (the losers were within the grace window)`)
      pairOf(t, await refresh(app, winner.refresh_token), `round ${round}: the winner's refresh token rotates`)
    }
  })

  t.test('replay inside the grace window (default 10 s) does not revoke the session', async (t) => {
    t.equal(app.config.REFRESH_REUSE_GRACE, 10_000, 'the default grace is 10 s')
    const session = await registerAndLogin(app)
    const pair = pairOf(t, await refresh(app, session.refresh_token), 'rotation')
    await sleep(300)
    for (let i = 1; i <= 3; i += 1) assertUnauthorized(t, await refresh(app, session.refresh_token), 'token_revoked', `replay ${i}`)
    t.equal((await me(app, pair.access_token)).statusCode, 200, 'the new access token still works')
    const next = pairOf(t, await refresh(app, pair.refresh_token), 'the new refresh token still rotates')
    t.equal((await me(app, next.access_token)).statusCode, 200, 'and its access token works')
  })

  t.test('a refresh token of a session ended by POST /logout is refused', async (t) => {
    const session = await registerAndLogin(app)
    t.equal((await logout(app, session.access_token)).statusCode, 204, 'logout')
    assertUnauthorized(t, await refresh(app, session.refresh_token), 'token_revoked', 'the refresh token of the logged-out session')

    // The same after a rotation: logging out with the newest access token kills the newest refresh token.
    const other = await login(app, session.user.email, session.password)
    const pair = pairOf(t, await refresh(app, other.refresh_token), 'rotation of a second session')
    t.equal((await logout(app, pair.access_token)).statusCode, 204, 'logout with the rotated access token')
    assertUnauthorized(t, await refresh(app, pair.refresh_token), 'token_revoked', 'the rotated refresh token after logout')
    assertUnauthorized(t, await refreshWithBody(app, pair.refresh_token), 'token_revoked', 'the same in the body')
    assertUnauthorized(t, await refresh(app, other.refresh_token), 'token_revoked', 'the spent one of that session')
  })
})

t.test('replay after the grace window revokes the session', async (t) => {
  const app = await build(t, { REFRESH_REUSE_GRACE: '1s' })
  t.equal(app.config.REFRESH_REUSE_GRACE, 1000)

  const victim = await registerAndLogin(app)
  const bystander = await login(app, victim.user.email, victim.password)
  t.not(decodeJwt(bystander.access_token).sid, decodeJwt(victim.access_token).sid, 'a second login is another session')

  const pair = pairOf(t, await refresh(app, victim.refresh_token), 'rotation')
  await sleep(1500)
  assertUnauthorized(t, await refresh(app, victim.refresh_token), 'token_revoked', 'the spent refresh token after the grace window')

  assertUnauthorized(t, await me(app, pair.access_token), 'token_revoked', 'the newest access token of the session (GET /me)')
  assertUnauthorized(t, await refresh(app, pair.refresh_token), 'token_revoked', 'the newest refresh token of the session')
  assertUnauthorized(t, await me(app, victim.access_token), 'token_revoked', 'the first access token of the session')
  assertUnauthorized(t, await refresh(app, victim.refresh_token), 'token_revoked', 'the spent refresh token, again')

  t.equal((await me(app, bystander.access_token)).statusCode, 200, 'another session of the same user is unaffected (access)')
  const next = pairOf(t, await refresh(app, bystander.refresh_token), 'another session of the same user is unaffected (refresh)')
  t.equal((await me(app, next.access_token)).statusCode, 200)

  const fresh = await login(app, victim.user.email, victim.password)
  t.equal((await me(app, fresh.access_token)).statusCode, 200, 'the user can log in again')
})
