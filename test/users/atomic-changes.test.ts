import { createConnection } from 'mysql2/promise'
import t from 'tap'
import type { Test } from 'tap'
import { bearer, build, createTestDatabase, login, registerAndLogin } from '../helper.js'
import type { App } from '../../src/app.js'

// API.md §12: a password change, reset, role change or logout of others and the session cut-off
// it causes are one transaction, all or nothing; and a login whose password check began before
// such a change committed gets no session that survives it.

/** Makes every session cut-off (a change of users.session_generation) fail, as a blip would. */
async function failCutOffs (databaseUrl: string): Promise<() => Promise<void>> {
  const connection = await createConnection(databaseUrl)
  await connection.query(`CREATE TRIGGER fail_cut_off BEFORE UPDATE ON users FOR EACH ROW
    IF NEW.session_generation <> OLD.session_generation THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'cut-off refused by the test'; END IF`)
  return async () => {
    await connection.query('DROP TRIGGER fail_cut_off')
    await connection.end()
  }
}

/** An app on the database and an admin logged in to it (the role set directly, then a fresh login). */
async function createAdminApp (t: Test, DATABASE_URL: string) {
  const app = await build(t, { DATABASE_URL })
  const first = await registerAndLogin(app)
  await app.pool.query("UPDATE users SET role='admin' WHERE id=?", [first.user.id])
  return { app, admin: await login(app, first.user.email, first.password) }
}

const me = (app: App, token: string) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })

t.test('a password change whose cut-off fails changes nothing', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL })
  const mine = await registerAndLogin(app)
  const other = await login(app, mine.user.email, mine.password)
  const restore = await failCutOffs(DATABASE_URL)
  const change = await app.inject({
    method: 'PUT',
    url: `/users/${mine.user.id}/password`,
    headers: bearer(mine.access_token),
    payload: { current_password: mine.password, new_password: 'the new password' },
  })
  await restore()
  t.equal(change.statusCode, 500, 'the change fails')
  const withNew = await app.inject({ method: 'POST', url: '/login', payload: { email: mine.user.email, password: 'the new password' } })
  t.equal(withNew.statusCode, 401, 'the new password was not stored')
  t.equal((await me(app, other.access_token)).statusCode, 200, 'the other session is as it was')

  const retried = await app.inject({
    method: 'PUT',
    url: `/users/${mine.user.id}/password`,
    headers: bearer(mine.access_token),
    payload: { current_password: mine.password, new_password: 'the new password' },
  })
  t.equal(retried.statusCode, 204, 'the same change, once the database is well again')
  t.equal((await me(app, other.access_token)).statusCode, 401, 'ends the other session')
  t.equal((await me(app, mine.access_token)).statusCode, 200, 'and keeps the caller\'s')
})

t.test('a role change whose cut-off fails changes nothing; likewise a logout of the others', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const { app, admin } = await createAdminApp(t, DATABASE_URL)
  const user = await registerAndLogin(app)
  const restore = await failCutOffs(DATABASE_URL)
  const promote = await app.inject({ method: 'PATCH', url: `/users/${user.user.id}`, headers: bearer(admin.access_token), payload: { role: 'admin' } })
  const logoutOthers = await app.inject({ method: 'POST', url: '/logout?scope=others', headers: bearer(user.access_token) })
  await restore()
  t.equal(promote.statusCode, 500, 'the role change fails')
  t.equal((await me(app, user.access_token)).json().role, 'user', 'and the role is unchanged')
  t.equal(logoutOthers.statusCode, 500, 'the logout of the others fails')
  t.equal((await me(app, user.access_token)).statusCode, 200, 'and the session is as it was')
})

t.test('200 logins with the old password racing a password change: none survives it', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const { app, admin } = await createAdminApp(t, DATABASE_URL)
  const victim = await registerAndLogin(app)
  // Logins started one after another, so their password checks straddle the change.
  const logins = Array.from({ length: 200 }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * 10))
    return app.inject({ method: 'POST', url: '/login', payload: { email: victim.user.email, password: victim.password } })
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const change = await app.inject({ method: 'PUT', url: `/users/${victim.user.id}/password`, headers: bearer(admin.access_token), payload: { new_password: 'the attacker is out' } })
  t.equal(change.statusCode, 204, 'the admin sets a new password')
  const responses = await Promise.all(logins)
  const issued = responses.filter((response) => response.statusCode === 200).map((response) => response.json().access_token as string)
  t.ok(issued.length > 0, `${issued.length} of 200 logins with the old password got tokens (they began before the change)`)
  t.equal(responses.filter((response) => ![200, 401].includes(response.statusCode)).length, 0, 'the rest were refused with 401')
  const surviving = (await Promise.all(issued.map((token) => me(app, token)))).filter((response) => response.statusCode === 200).length
  t.equal(surviving, 0, `sessions surviving the change: ${surviving}`)
})
