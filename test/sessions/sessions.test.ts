import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../src/app.js'
import { assertUnauthorized, bearer, build, decodeJwt, login, registerAndLogin, type Session } from '../helper.js'

// API.md §7: a session per login, listed and ended by its user (or an admin); ending one kills
// its tokens on the next request, on every instance.

const sidOf = (session: { access_token: string }) => String(decodeJwt(session.access_token).sid)

async function listSessions (app: App, token: string, url = '/sessions') {
  const response = await app.inject({ method: 'GET', url, headers: bearer(token) })
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`)
  return response.json() as { items: Array<Record<string, unknown> & { id: string, current: boolean }>, next_cursor: string | null }
}

const me = (app: App, token: string) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })
const refresh = (app: App, token: string) => app.inject({ method: 'POST', url: '/refresh', headers: bearer(token) })
const endSession = (app: App, token: string, id: string, url = `/sessions/${id}`) =>
  app.inject({ method: 'DELETE', url, headers: bearer(token) })

t.test('sessions', async (t) => {
  const app = await build(t)

  async function loginAgain (first: Session & { password: string }, userAgent: string) {
    const response = await app.inject({
      method: 'POST', url: '/login', payload: { email: first.user.email, password: first.password },
      headers: { 'user-agent': userAgent },
    })
    t.equal(response.statusCode, 200, 'a second login')
    return response.json() as Session
  }

  t.test('each login is a session: listed with its client, this one current, most recently used first', async (t) => {
    const first = await registerAndLogin(app)
    const second = await loginAgain(first, 'Second Browser/1.0')
    const page = await listSessions(app, first.access_token)
    t.same(page.items.map((item) => item.id), [sidOf(second), sidOf(first)], 'newest login first')
    t.equal(page.next_cursor, null, 'one page')
    t.same(page.items.map((item) => item.current), [false, true], 'the caller\'s own session is current')
    const [newest] = page.items
    t.same(Object.keys(newest!).sort(), ['created_at', 'current', 'device', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent'], 'the §7 fields and the device, nothing more')
    t.equal(newest!.user_agent, 'Second Browser/1.0', 'user agent as seen at login')
    t.equal(newest!.device, 'Second Browser/1.0', 'a user agent the parser does not know is shown as it is')
    t.equal(newest!.ip, '127.0.0.1', 'client address')
    const expiresIn = Date.parse(String(newest!.expires_at)) - Date.now()
    t.ok(expiresIn > 13 * 86_400_000 && expiresIn <= 14 * 86_400_000, 'expires when its refresh token does (14 days)')

    // A refresh is a use: the first session moves to the top, with the client seen now.
    await sleep(5)
    const pair = await app.inject({ method: 'POST', url: '/refresh', headers: { ...bearer(first.refresh_token), 'user-agent': 'Renamed/2.0' } })
    t.equal(pair.statusCode, 200, 'refresh')
    const after = await listSessions(app, second.access_token)
    t.same(after.items.map((item) => item.id), [sidOf(first), sidOf(second)], 'the refreshed session is now first')
    t.equal(after.items[0]!.user_agent, 'Renamed/2.0', 'user agent as seen at the last refresh')
    const chrome = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.73 Safari/537.36'
    await loginAgain(first, chrome)
    t.equal((await listSessions(app, first.access_token)).items[0]!.device, 'Chrome 156 on Linux', 'a browser is named as people name it')
    t.ok(Date.parse(String(after.items[0]!.last_used_at)) > Date.parse(String(after.items[0]!.created_at)), 'last_used_at moved on')
    t.same(after.items.map((item) => item.current), [false, true], 'current follows the caller')
  })

  t.test('pages follow next_cursor; a cursor we did not make is a 400', async (t) => {
    const first = await registerAndLogin(app)
    await loginAgain(first, 'b')
    await loginAgain(first, 'c')
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await listSessions(app, first.access_token, `/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      t.ok(page.items.length <= 2, 'at most limit items')
      seen.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
    } while (cursor)
    t.equal(seen.length, 3, 'every session once')
    t.equal(new Set(seen).size, 3, 'no repeats')
    for (const bad of ['nope', Buffer.from('v1:5').toString('base64url'), Buffer.from('s1:1:x').toString('base64url')]) {
      const response = await app.inject({ method: 'GET', url: `/sessions?cursor=${bad}`, headers: bearer(first.access_token) })
      t.equal(response.statusCode, 400, `cursor ${bad}: 400`)
      t.equal(response.json().code, 'validation_error', 'validation_error')
    }
  })

  t.test('DELETE /sessions/:id ends that session: its access and refresh tokens die, it leaves the list', async (t) => {
    const first = await registerAndLogin(app)
    const second = await loginAgain(first, 'other device')
    t.equal((await endSession(app, first.access_token, sidOf(second))).statusCode, 204, '204')
    assertUnauthorized(t, await me(app, second.access_token), 'token_revoked', 'its access token')
    assertUnauthorized(t, await refresh(app, second.refresh_token), 'token_revoked', 'its refresh token')
    t.equal((await me(app, first.access_token)).statusCode, 200, 'the caller\'s session lives')
    t.same((await listSessions(app, first.access_token)).items.map((item) => item.id), [sidOf(first)], 'only the caller\'s is left')
    const again = await endSession(app, first.access_token, sidOf(second))
    t.equal(again.statusCode, 404, 'ending it again: 404')
  })

  t.test('ending your own session is a logout', async (t) => {
    const own = await registerAndLogin(app)
    t.equal((await endSession(app, own.access_token, sidOf(own))).statusCode, 204, '204')
    assertUnauthorized(t, await me(app, own.access_token), 'token_revoked', 'the access token')
    assertUnauthorized(t, await refresh(app, own.refresh_token), 'token_revoked', 'the refresh token')
  })

  t.test('another user\'s or an unknown session id is 404, never 403; a malformed one is 400', async (t) => {
    const alice = await registerAndLogin(app)
    const bob = await registerAndLogin(app)
    const theirs = await endSession(app, alice.access_token, sidOf(bob))
    t.equal(theirs.statusCode, 404, 'another user\'s session: 404')
    t.equal(theirs.json().code, 'not_found', 'not_found')
    t.equal((await me(app, bob.access_token)).statusCode, 200, 'and it still lives')
    t.equal((await endSession(app, alice.access_token, '00000000-0000-7000-8000-000000000000')).statusCode, 404, 'unknown: 404')
    for (const bad of ['42', 'not-a-uuid', sidOf(bob).toUpperCase()]) {
      const response = await endSession(app, alice.access_token, bad)
      t.equal(response.statusCode, 400, `${bad}: 400`)
      t.equal(response.json().code, 'validation_error', 'validation_error')
    }
  })

  t.test('logout of the others, or of all, empties the list accordingly', async (t) => {
    const first = await registerAndLogin(app)
    await loginAgain(first, 'b')
    const third = await loginAgain(first, 'c')
    t.equal((await app.inject({ method: 'POST', url: '/logout?scope=others', headers: bearer(third.access_token) })).statusCode, 204, 'logout others')
    t.same((await listSessions(app, third.access_token)).items.map((item) => item.id), [sidOf(third)], 'only this one is live')
    const fourth = await loginAgain(first, 'd')
    t.same((await listSessions(app, fourth.access_token)).items.map((item) => item.id), [sidOf(fourth), sidOf(third)], 'a new login is listed')
    t.equal((await app.inject({ method: 'POST', url: '/logout', headers: bearer(fourth.access_token) })).statusCode, 204, 'logout local')
    t.same((await listSessions(app, third.access_token)).items.map((item) => item.id), [sidOf(third)], 'a logged-out session is gone from the list')
  })

  t.test('/users/:id/sessions: self or admin; anyone else 403', async (t) => {
    const user = await registerAndLogin(app)
    const other = await registerAndLogin(app)
    const admin = await registerAndLogin(app)
    await app.pool.query("UPDATE users SET role='admin' WHERE id=?", [admin.user.id])
    const own = await listSessions(app, user.access_token, `/users/${user.user.id}/sessions`)
    t.same(own.items.map((item) => [item.id, item.current]), [[sidOf(user), true]], 'self: own sessions, current marked')
    const byAdmin = await listSessions(app, admin.access_token, `/users/${user.user.id}/sessions`)
    t.same(byAdmin.items.map((item) => [item.id, item.current]), [[sidOf(user), false]], 'admin: the user\'s, none current')

    const forbidden = await app.inject({ method: 'GET', url: `/users/${user.user.id}/sessions`, headers: bearer(other.access_token) })
    t.equal(forbidden.statusCode, 403, 'another user: 403')
    t.equal(forbidden.json().code, 'forbidden', 'forbidden')
    const forbiddenEnd = await endSession(app, other.access_token, sidOf(user), `/users/${user.user.id}/sessions/${sidOf(user)}`)
    t.equal(forbiddenEnd.statusCode, 403, 'another user ending it: 403')
    const missing = await app.inject({ method: 'GET', url: '/users/999999/sessions', headers: bearer(admin.access_token) })
    t.equal(missing.statusCode, 404, 'admin, unknown user: 404')
    const wrongUser = await endSession(app, admin.access_token, sidOf(user), `/users/${other.user.id}/sessions/${sidOf(user)}`)
    t.equal(wrongUser.statusCode, 404, 'a session of another user than the path\'s: 404')

    t.equal((await endSession(app, admin.access_token, sidOf(user), `/users/${user.user.id}/sessions/${sidOf(user)}`)).statusCode, 204, 'admin ends it: 204')
    assertUnauthorized(t, await me(app, user.access_token), 'token_revoked', 'the user\'s token after the admin ended it')
    const selfSecond = await login(app, other.user.email, 'correct horse battery')
    t.equal((await endSession(app, other.access_token, sidOf(selfSecond), `/users/${other.user.id}/sessions/${sidOf(selfSecond)}`)).statusCode, 204, 'self, through /users/:id: 204')
    assertUnauthorized(t, await me(app, selfSecond.access_token), 'token_revoked', 'that session\'s token')
  })

  t.test('a session ended while its refresh is in flight hands out no live tokens', async (t) => {
    for (let round = 0; round < 5; round++) {
      const first = await registerAndLogin(app)
      const second = await loginAgain(first, 'victim')
      const [refreshed, ended] = await Promise.all([refresh(app, second.refresh_token), endSession(app, first.access_token, sidOf(second))])
      t.equal(ended.statusCode, 204, `round ${round}: ended`)
      if (refreshed.statusCode === 200) {
        const pair = refreshed.json()
        assertUnauthorized(t, await me(app, pair.access_token), 'token_revoked', `round ${round}: the new access token`)
        assertUnauthorized(t, await refresh(app, pair.refresh_token), 'token_revoked', `round ${round}: the new refresh token`)
      } else {
        assertUnauthorized(t, refreshed, 'token_revoked', `round ${round}: the refresh lost the race`)
      }
      assertUnauthorized(t, await me(app, second.access_token), 'token_revoked', `round ${round}: the old access token`)
    }
  })

  t.test('ended and expired sessions are purged; their tokens stay dead', async (t) => {
    const first = await registerAndLogin(app)
    const second = await loginAgain(first, 'x')
    await endSession(app, first.access_token, sidOf(second))
    const { purgeExpired } = await import('../../src/plugins/purge.js')
    const removed = await purgeExpired(app)
    t.ok(removed.sessions >= 1, 'the ended session is purged')
    const [rows] = await app.pool.query('SELECT id FROM sessions WHERE id = ?', [sidOf(second)])
    t.same(rows, [], 'its row is gone')
    assertUnauthorized(t, await me(app, second.access_token), 'token_revoked', 'a token whose session row is gone')
    t.equal((await me(app, first.access_token)).statusCode, 200, 'a live session is kept')
  })
})

t.test('SESSION_MAX_AGE: a session older than it cannot be refreshed, however often it was', async (t) => {
  const app = await build(t, { SESSION_MAX_AGE: '2s' })
  const own = await registerAndLogin(app)
  const [listed] = (await listSessions(app, own.access_token)).items
  const cap = Date.parse(String(listed!.expires_at)) - Date.parse(String(listed!.created_at))
  t.equal(cap, 2000, 'expires_at is capped at created_at + SESSION_MAX_AGE')
  const pair = await refresh(app, own.refresh_token)
  t.equal(pair.statusCode, 200, 'within the age: refresh works')
  await sleep(2100)
  assertUnauthorized(t, await refresh(app, pair.json().refresh_token), 'token_revoked', 'past the age, with a fresh refresh token')
  t.same((await listSessions(app, pair.json().access_token)).items, [], 'and it is no longer listed')
})

t.test('two instances on one database: a session ended through one is dead on the next request through the other', async (t) => {
  const a = await build(t)
  const b = await build(t, { DATABASE_URL: a.config.DATABASE_URL })
  const first = await registerAndLogin(a)
  const second = await login(b, first.user.email, first.password)
  t.equal((await me(b, second.access_token)).statusCode, 200, 'live on B')
  t.equal((await endSession(a, first.access_token, sidOf(second))).statusCode, 204, 'ended through A')
  assertUnauthorized(t, await me(b, second.access_token), 'token_revoked', 'dead through B')
  assertUnauthorized(t, await refresh(b, second.refresh_token), 'token_revoked', 'its refresh token through B')
})
