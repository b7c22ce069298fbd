import t from 'tap'
import { createConnection } from 'mysql2/promise'
import { bearer, build, createTestDatabase, login, newUser, registerAndLogin, type Session } from '../helper.js'
import { startMailServer, tokenOfLink } from '../mail-server.js'
import type { App } from '../../src/app.js'

// API.md §15: every security-relevant change writes its event in the same transaction, the
// events are readable by their user and by admins, newest first, and never carry a secret.

const APP_URL = 'http://127.0.0.1:3000'
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.73 Safari/537.36'

interface Event { id: number, type: string, actor_id: number | null, subject_user_id: number | null, session_id: string | null, ip: string | null, user_agent: string | null, device: string | null, request_id: string | null, details: Record<string, unknown>, count: number }

async function eventsOf (app: App, token: string, userId: number, query = ''): Promise<Event[]> {
  const response = await app.inject({ method: 'GET', url: `/users/${userId}/events${query}`, headers: bearer(token) })
  if (response.statusCode !== 200) throw new Error(`events: ${response.statusCode} ${response.body}`)
  return response.json().items
}

async function makeAdmin (app: App): Promise<Session> {
  const body = newUser()
  const registered = await app.inject({ method: 'POST', url: '/register', payload: body })
  await app.pool.query("UPDATE users SET role = 'admin' WHERE id = ?", [registered.json().id])
  return login(app, body.email, body.password)
}

t.test('each change writes its event, with who, from where and which request', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL })
  const body = newUser()
  const registered = await app.inject({ method: 'POST', url: '/register', payload: body, headers: { 'user-agent': UA } })
  const userId = registered.json().id as number
  const loggedIn = await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password }, headers: { 'user-agent': UA } })
  const me = loggedIn.json() as Session

  let events = await eventsOf(app, me.access_token, userId)
  t.same(events.map((event) => event.type), ['login.succeeded', 'user.registered'], 'newest first')
  const [signIn] = events
  t.equal(signIn!.subject_user_id, userId)
  t.equal(signIn!.session_id, JSON.parse(Buffer.from(me.access_token.split('.')[1]!, 'base64url').toString()).sid, 'the session the login started')
  t.equal(signIn!.ip, '127.0.0.1')
  t.equal(signIn!.user_agent, UA)
  t.equal(signIn!.device, 'Chrome 156 on Linux', 'the device as people name it')
  t.equal(signIn!.request_id, loggedIn.headers['x-request-id'] ?? signIn!.request_id, 'the request id')
  t.ok(signIn!.request_id, 'a request id')
  t.same(Object.keys(signIn!).sort(), ['actor_id', 'count', 'details', 'device', 'id', 'ip', 'occurred_at', 'request_id', 'session_id', 'subject_user_id', 'type', 'user_agent'])

  // Wrong passwords: one row per email and minute, counted.
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: 'wrong password!' } })).statusCode, 401)
  const [failed] = await eventsOf(app, me.access_token, userId, '?type=login.failed')
  t.equal(failed!.count, 3, 'three failures, one row')
  t.same(failed!.details, { email: body.email, reason: 'wrong_password' }, 'the email as typed and why; never the password')

  const patch = (payload: Record<string, string>, token = me.access_token) => app.inject({ method: 'PATCH', url: `/users/${userId}`, payload, headers: bearer(token) })
  t.equal((await patch({ name: 'Renamed', email: `renamed-${body.email}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/users/${userId}/password`, payload: { current_password: body.password, new_password: 'a new password here' }, headers: bearer(me.access_token) })).statusCode, 204)
  const other = await login(app, `renamed-${body.email}`, 'a new password here')
  const otherSid = JSON.parse(Buffer.from(other.access_token.split('.')[1]!, 'base64url').toString()).sid as string
  t.equal((await app.inject({ method: 'DELETE', url: `/sessions/${otherSid}`, headers: bearer(me.access_token) })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/logout?scope=others', headers: bearer(me.access_token) })).statusCode, 204)

  events = await eventsOf(app, me.access_token, userId)
  t.same(events.slice(0, 5).map((event) => event.type), ['logout', 'session.ended', 'login.succeeded', 'password.changed', 'user.updated'])
  t.same(events[0]!.details, { scope: 'others' })
  t.same(events[1]!.details, { session: otherSid })
  t.same(events[3]!.details, { sessions_ended: 'others' })
  t.same(events[4]!.details, { fields: ['name', 'email'] }, 'which fields changed, not their values')
  t.equal(events[4]!.actor_id, userId, 'done by the user')

  // A refresh token used twice after the grace period: the session is revoked and it is recorded.
  const app2 = await build(t, { DATABASE_URL: (app.config.DATABASE_URL), REFRESH_REUSE_GRACE: '0' })
  const victim = await login(app2, `renamed-${body.email}`, 'a new password here')
  t.equal((await app2.inject({ method: 'POST', url: '/refresh', headers: bearer(victim.refresh_token) })).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await app2.inject({ method: 'POST', url: '/refresh', headers: bearer(victim.refresh_token) })).statusCode, 401)
  const [reused] = await eventsOf(app, me.access_token, userId, '?type=token.refresh_reused')
  t.ok(reused, 'token.refresh_reused is recorded')

  // Mail-borne changes: reset requested, reset, email verified.
  t.equal((await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: `renamed-${body.email}` } })).statusCode, 202)
  const resetMail = await smtp.waitForMail((mail) => /reset/i.test(mail.subject))
  t.equal((await app.inject({ method: 'POST', url: '/password/reset', payload: { token: tokenOfLink(resetMail.text, APP_URL, '/reset-password'), new_password: 'reset password here' } })).statusCode, 204)
  const admin = await makeAdmin(app)
  const adminEvents = await eventsOf(app, admin.access_token, userId)
  t.same(adminEvents.slice(0, 3).map((event) => event.type), ['password.reset', 'password.reset_requested', 'token.refresh_reused'], 'an admin reads them too')
  t.equal(adminEvents[0]!.actor_id, null, 'a reset link is nobody signed in')
  const verify = await smtp.waitForMail((mail) => /confirm/i.test(mail.subject) && mail.to.includes(`renamed-${body.email}`))
  t.equal((await app.inject({ method: 'POST', url: '/email/verify', payload: { token: tokenOfLink(verify.text, APP_URL, '/verify-email') } })).statusCode, 204)

  // An admin's role change and delete.
  t.equal((await patch({ role: 'admin' }, admin.access_token)).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${userId}`, headers: bearer(admin.access_token) })).statusCode, 204)
  const all = await app.inject({ method: 'GET', url: `/admin/events?user_id=${userId}`, headers: bearer(admin.access_token) })
  t.equal(all.statusCode, 200)
  const types = (all.json().items as Event[]).map((event) => event.type)
  t.same(types.slice(0, 3), ['user.deleted', 'user.role_changed', 'email.verified'], 'the events outlive the user')
  t.same((all.json().items as Event[])[1]!.details, { from: 'user', to: 'admin' })
  t.equal((all.json().items as Event[])[0]!.actor_id, admin.user.id, 'the admin did it')

  // Nothing in the log is a secret: no password, no token, no hash.
  const [rows] = await app.pool.query('SELECT * FROM security_events') as unknown as [Array<Record<string, unknown>>]
  const text = JSON.stringify(rows)
  for (const secret of [body.password, 'a new password here', 'reset password here', 'wrong password!', me.access_token, me.refresh_token, '$argon2']) {
    t.notOk(text.includes(secret), `${secret.slice(0, 12)}… is not in the audit log`)
  }
})

t.test('locked and unknown-email logins are recorded, one row per email and minute', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '2' })
  const me = await registerAndLogin(app)
  for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: 'wrong password!' } })
  const events = await eventsOf(app, me.access_token, me.user.id)
  const failed = events.find((event) => event.type === 'login.failed')
  const locked = events.find((event) => event.type === 'login.locked')
  t.equal(failed?.count, 2, 'the two checked attempts')
  t.equal(locked?.count, 3, 'the three refused without a check')
  t.equal(locked?.subject_user_id, me.user.id, 'about the account with that email')
  await app.inject({ method: 'POST', url: '/login', payload: { email: 'nobody@example.com', password: 'whatever it is' } })
  const admin = await makeAdmin(app)
  const unknown = await app.inject({ method: 'GET', url: '/admin/events?type=login.failed', headers: bearer(admin.access_token) })
  const row = (unknown.json().items as Event[]).find((event) => event.details.email === 'nobody@example.com')
  t.equal(row?.subject_user_id, null, 'no account: no subject')
  t.equal(row?.details.reason, 'unknown_email')
})

t.test('who may read which events; pages, filters and bad input', async (t) => {
  const app = await build(t)
  const alice = await registerAndLogin(app)
  const bob = await registerAndLogin(app)
  const admin = await makeAdmin(app)
  const get = (url: string, token: string) => app.inject({ method: 'GET', url, headers: bearer(token) })
  t.equal((await get(`/users/${bob.user.id}/events`, alice.access_token)).statusCode, 403, 'another user\'s events: 403')
  t.equal((await get('/admin/events', alice.access_token)).statusCode, 403, 'the admin log: admins only')
  t.equal((await get(`/users/${bob.user.id}/events`, admin.access_token)).statusCode, 200, 'an admin reads anyone\'s')
  t.equal((await get('/users/999999/events', admin.access_token)).statusCode, 404, 'an unknown user: 404')
  t.equal((await app.inject({ method: 'GET', url: '/admin/events' })).statusCode, 401, 'no token: 401')
  for (const query of ['?type=nope', '?since=yesterday', '?user_id=0', '?limit=0', '?cursor=garbage']) {
    const response = await get(`/admin/events${query}`, admin.access_token)
    t.equal(response.statusCode, 400, `${query}: 400`)
    t.equal(response.json().code, 'validation_error')
  }

  for (let i = 0; i < 5; i++) await login(app, alice.user.email, alice.password)
  const seen: number[] = []
  let cursor = ''
  for (let page = 0; page < 10; page++) {
    const response = await get(`/users/${alice.user.id}/events?limit=2${cursor}`, alice.access_token)
    const { items, next_cursor: next } = response.json() as { items: Event[], next_cursor: string | null }
    seen.push(...items.map((event) => event.id))
    if (!next) break
    cursor = `&cursor=${next}`
  }
  t.equal(seen.length, 7, 'every event once: registered and six logins')
  t.same(seen, [...seen].sort((a, b) => b - a), 'newest first across pages')

  const future = new Date(Date.now() + 3_600_000).toISOString()
  t.same((await get(`/admin/events?since=${future}`, admin.access_token)).json().items, [], 'since the future: nothing')
  const recent = (await get(`/admin/events?since=${new Date(Date.now() - 60_000).toISOString()}&type=user.registered`, admin.access_token)).json().items as Event[]
  t.equal(recent.length, 3, 'since a minute ago, of one type: the three registrations')
})

t.test('an event that cannot be written takes its change with it', async (t) => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const me = await registerAndLogin(app)
  const other = await login(app, me.user.email, me.password)
  const root = await createConnection(url)
  t.teardown(() => root.end())
  await root.query("CREATE TRIGGER no_events BEFORE INSERT ON security_events FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'events are down'")
  const changed = await app.inject({ method: 'PUT', url: `/users/${me.user.id}/password`, payload: { current_password: me.password, new_password: 'never stored one' }, headers: bearer(me.access_token) })
  t.equal(changed.statusCode, 500, 'the change fails')
  t.equal(changed.json().code, 'internal_error', 'in the error shape')
  await root.query('DROP TRIGGER no_events')
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: bearer(other.access_token) })).statusCode, 200, 'the other session lives: the cut-off rolled back too')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })).statusCode, 200, 'the old password still works')
})
