import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { RowDataPacket } from 'mysql2/promise'
import type { App } from '../../src/app.js'
import { bearer, build, decodeJwt, login, newUser, registerAndLogin, type Session } from '../helper.js'

// API.md §4 beyond the access matrix: pagination, fresh tokens, role changes, the last admin,
// password changes, deletion. Test order matters only for the first subtest, which counts users.

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

const USER_KEYS = ['created_at', 'email', 'email_verified_at', 'id', 'name', 'role', 'updated_at']
const NEW_PASSWORD = 'a brand new passphrase'

t.test('users: rules (API.md §4)', async (t) => {
  const app = await build(t)

  /**
   * app.inject, plus the rule that no user response ever carries a hash: every 200/201 body is
   * checked for password_hash (and for anything that looks like an argon2 hash).
   */
  async function send (t: Test, method: Method, url: string, token?: string, payload?: object): Promise<LightMyRequestResponse> {
    const response = await app.inject({ method, url, headers: token ? bearer(token) : {}, ...(payload !== undefined && { payload }) })
    if (response.statusCode === 200 || response.statusCode === 201) {
      t.notMatch(response.body, /password_hash|\$argon2/, `${method} ${url}: no password_hash in the ${response.statusCode} body`)
    }
    return response
  }

  const me = (t: Test, token: string) => send(t, 'GET', '/me', token)
  const refresh = (t: Test, token: string) => send(t, 'POST', '/refresh', token)

  /** A non-fresh session: the pair /refresh gives for a new login of the user. */
  async function refreshed (t: Test, email: string, password: string): Promise<Session> {
    const session = await login(app, email, password)
    const response = await refresh(t, session.refresh_token)
    t.equal(response.statusCode, 200, 'setup: refresh')
    const pair = response.json() as Session
    t.equal(decodeJwt(pair.access_token).fresh, false, 'setup: the refreshed access token is not fresh')
    return pair
  }

  async function makeAdmin (): Promise<Session & { password: string }> {
    const session = await registerAndLogin(app)
    await app.pool.query("UPDATE users SET role='admin' WHERE id=?", [session.user.id])
    return session
  }

  /** Leaves no admin in the database (roles only; nobody's tokens change), for last-admin tests. */
  async function noAdmins () {
    await app.pool.query("UPDATE users SET role='user' WHERE role='admin'")
  }

  async function column (id: number, name: 'email' | 'name' | 'role' | 'password_hash'): Promise<string | null> {
    const [rows] = await app.pool.query<RowDataPacket[]>(`SELECT ${name} AS v FROM users WHERE id = ?`, [id])
    return (rows[0]?.v as string | undefined) ?? null
  }

  async function count (sql: string, params: unknown[] = []): Promise<number> {
    const [rows] = await app.pool.query<RowDataPacket[]>(sql, params)
    return Number(rows[0]!.n)
  }

  const adminCount = () => count("SELECT COUNT(*) AS n FROM users WHERE role='admin'")

  /** An error in the §1 shape with this status and code; a 401 with the RFC 6750 challenge. */
  function assertError (t: Test, response: LightMyRequestResponse, status: number, code: string, what: string) {
    t.equal(response.statusCode, status, `${what}: ${status}`)
    const body = response.json()
    t.equal(body.code, code, `${what}: ${code}`)
    t.equal(body.statusCode, status, `${what}: statusCode in the body`)
    const keys = code === 'validation_error' ? ['code', 'details', 'error', 'message', 'statusCode'] : ['code', 'error', 'message', 'statusCode']
    t.same(Object.keys(body).sort(), keys, `${what}: the error shape and nothing else`)
    if (status === 401) t.match(String(response.headers['www-authenticate'] ?? ''), /^Bearer realm="boardkit"/, `${what}: WWW-Authenticate`)
  }

  function assertNoContent (t: Test, response: LightMyRequestResponse, what: string) {
    t.equal(response.statusCode, 204, `${what}: 204`)
    t.equal(response.body, '', `${what}: no body`)
  }

  /** The session's access token works and its refresh token rotates (which spends it). */
  async function assertAlive (t: Test, session: Session, what: string) {
    t.equal((await me(t, session.access_token)).statusCode, 200, `${what}: access token works`)
    const rotated = await refresh(t, session.refresh_token)
    t.equal(rotated.statusCode, 200, `${what}: refresh token rotates`)
    t.equal((await me(t, (rotated.json() as Session).access_token)).statusCode, 200, `${what}: the rotated access token works`)
  }

  async function assertDead (t: Test, session: Session, what: string) {
    assertError(t, await me(t, session.access_token), 401, 'token_revoked', `${what}: access token`)
    assertError(t, await refresh(t, session.refresh_token), 401, 'token_revoked', `${what}: refresh token`)
  }

  // ── GET /users ──────────────────────────────────────────────────────────────────────────────

  t.test('GET /users: keyset pagination on id', async (t) => {
    // First subtest: the database holds exactly these 25 users.
    const admin = await makeAdmin()
    for (let i = 0; i < 24; i++) {
      const response = await send(t, 'POST', '/register', undefined, newUser())
      t.equal(response.statusCode, 201, `setup: user ${i + 2} registered`)
    }
    t.equal(await count('SELECT COUNT(*) AS n FROM users'), 25, '25 users in the database')
    const [rows] = await app.pool.query<RowDataPacket[]>('SELECT id FROM users ORDER BY id')
    const allIds = rows.map((row) => Number(row.id))

    const seen: number[] = []
    const pageSizes: number[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = cursor === null ? '/users?limit=10' : `/users?limit=10&cursor=${encodeURIComponent(cursor)}`
      const response = await send(t, 'GET', url, admin.access_token)
      t.equal(response.statusCode, 200, `page ${pages + 1}: 200`)
      const page = response.json()
      t.same(Object.keys(page).sort(), ['items', 'next_cursor'], `page ${pages + 1}: {items, next_cursor}`)
      for (const item of page.items) t.same(Object.keys(item).sort(), USER_KEYS, `user ${item.id}: the user object`)
      seen.push(...page.items.map((item: { id: number }) => item.id))
      pageSizes.push(page.items.length)
      cursor = page.next_cursor
      if (cursor !== null) t.type(cursor, 'string', 'next_cursor is a string until the last page')
      pages += 1
    } while (cursor !== null && pages < 10)

    t.same(pageSizes, [10, 10, 5], 'pages of 10, 10 and 5')
    t.equal(cursor, null, 'next_cursor is null on the last page')
    t.equal(new Set(seen).size, seen.length, 'no user twice')
    t.same(seen, [...seen].sort((a, b) => a - b), 'ascending ids')
    t.same(seen, allIds, 'every user exactly once')

    const byDefault = (await send(t, 'GET', '/users', admin.access_token)).json()
    t.equal(byDefault.items.length, 20, 'default limit 20')
    t.type(byDefault.next_cursor, 'string', 'more after the default page')
    const all = (await send(t, 'GET', '/users?limit=100', admin.access_token)).json()
    t.equal(all.items.length, 25, 'limit 100: everyone on one page')
    t.equal(all.next_cursor, null, 'limit 100: no next page')
    const exact = (await send(t, 'GET', '/users?limit=25', admin.access_token)).json()
    t.equal(exact.items.length, 25, 'limit = number of users: one full page')
    t.equal(exact.next_cursor, null, 'limit = number of users: next_cursor null, no empty page after it')

    for (const limit of ['0', '101', '-1', 'ten', '1.5']) {
      const response = await send(t, 'GET', `/users?limit=${limit}`, admin.access_token)
      assertError(t, response, 400, 'validation_error', `limit=${limit}`)
      t.equal(response.json().details?.[0]?.path, '/limit', `limit=${limit}: details point at /limit`)
    }
    const badCursors = [
      'garbage',
      Buffer.from('v1:0').toString('base64url'),
      Buffer.from('v2:5').toString('base64url'),
      Buffer.from('v1:abc').toString('base64url'),
      Buffer.from('v1:5').toString('base64url') + '==',
      'x'.repeat(65),
      '',
    ]
    for (const cursor of badCursors) {
      const response = await send(t, 'GET', `/users?cursor=${encodeURIComponent(cursor)}`, admin.access_token)
      assertError(t, response, 400, 'validation_error', `cursor ${JSON.stringify(cursor)}`)
    }
    assertError(t, await send(t, 'GET', '/users?offset=10', admin.access_token), 400, 'validation_error', 'an unknown query parameter')
  })

  // ── PATCH /users/:id ────────────────────────────────────────────────────────────────────────

  t.test('PATCH own email needs a fresh token; email is normalised and unique', async (t) => {
    const user = await registerAndLogin(app)
    const other = await registerAndLogin(app)
    const stale = await refreshed(t, user.user.email, user.password)
    const url = `/users/${user.user.id}`

    const denied = await send(t, 'PATCH', url, stale.access_token, { email: newUser().email })
    assertError(t, denied, 401, 'fresh_token_required', 'email change with a refreshed token')
    t.match(String(denied.headers['www-authenticate']), /error="invalid_token"/, 'the challenge names the token as the problem')
    t.equal(await column(user.user.id, 'email'), user.user.email, 'email unchanged')

    const renamed = await send(t, 'PATCH', url, stale.access_token, { name: '  Stale But Fine ' })
    t.equal(renamed.statusCode, 200, 'a name change does not need a fresh token')
    t.equal(renamed.json().name, 'Stale But Fine', 'name trimmed')

    const fresh = newUser().email
    const messy = `  ${fresh.toUpperCase()}  `
    const changed = await send(t, 'PATCH', url, user.access_token, { email: messy })
    t.equal(changed.statusCode, 200, 'email change with a login token: 200')
    t.same(Object.keys(changed.json()).sort(), USER_KEYS, 'the user object')
    t.equal(changed.json().email, fresh, 'response: trimmed and lower-case')
    t.equal(await column(user.user.id, 'email'), fresh, 'stored trimmed and lower-case')
    t.equal((await login(app, fresh, user.password)).user.id, user.user.id, 'logs in with the new email')
    const oldEmail = await send(t, 'POST', '/login', undefined, { email: user.user.email, password: user.password })
    assertError(t, oldEmail, 401, 'invalid_credentials', 'the old email no longer logs in')

    const taken = await send(t, 'PATCH', url, user.access_token, { email: other.user.email.toUpperCase() })
    assertError(t, taken, 409, 'email_taken', 'another user\'s email (other case)')
    t.equal(await column(user.user.id, 'email'), fresh, 'email unchanged after 409')

    const same = await send(t, 'PATCH', url, user.access_token, { email: fresh })
    t.equal(same.statusCode, 200, 'setting your own current email again is not a conflict')

    const empty = await send(t, 'PATCH', url, user.access_token, {})
    assertError(t, empty, 400, 'validation_error', 'PATCH {}')
    const unknown = await send(t, 'PATCH', url, user.access_token, { nickname: 'x' })
    assertError(t, unknown, 400, 'validation_error', 'an unknown field')
    t.equal(unknown.json().details[0].path, '/nickname', 'details point at the unknown field')
    assertError(t, await send(t, 'PATCH', url, user.access_token, { password: NEW_PASSWORD }), 400, 'validation_error', 'password is not patchable')
    assertError(t, await send(t, 'PATCH', url, user.access_token, { name: 'ok', id: 1 }), 400, 'validation_error', 'id is not patchable')
    assertError(t, await send(t, 'PATCH', url, user.access_token, { email: 'not-an-email' }), 400, 'validation_error', 'an invalid email')
    assertError(t, await send(t, 'PATCH', url, user.access_token, { name: '   ' }), 400, 'validation_error', 'a blank name')
    assertError(t, await send(t, 'PATCH', '/users/0', user.access_token, { name: 'x' }), 400, 'validation_error', 'id 0')
    assertError(t, await send(t, 'PATCH', '/users/abc', user.access_token, { name: 'x' }), 400, 'validation_error', 'id abc')
    t.equal(await column(user.user.id, 'name'), 'Stale But Fine', 'nothing changed by the rejected requests')
  })

  t.test('an admin changes another user\'s email without a fresh token', async (t) => {
    const admin = await makeAdmin()
    const stale = await refreshed(t, admin.user.email, admin.password)
    const user = await registerAndLogin(app)
    const email = newUser().email
    const response = await send(t, 'PATCH', `/users/${user.user.id}`, stale.access_token, { email })
    t.equal(response.statusCode, 200, 'the fresh-token rule is for your own email')
    t.equal(await column(user.user.id, 'email'), email)
    // An admin's own email is still their own.
    const own = await send(t, 'PATCH', `/users/${admin.user.id}`, stale.access_token, { email: newUser().email })
    assertError(t, own, 401, 'fresh_token_required', 'an admin\'s own email with a refreshed token')
  })

  t.test('role escalation: a plain user cannot change a role', async (t) => {
    const user = await registerAndLogin(app)
    const other = await registerAndLogin(app)
    const url = `/users/${user.user.id}`

    assertError(t, await send(t, 'PATCH', url, user.access_token, { role: 'admin' }), 403, 'forbidden', 'PATCH self {role: admin}')
    t.equal(await column(user.user.id, 'role'), 'user', 'role unchanged')
    assertError(t, await send(t, 'GET', '/users', user.access_token), 403, 'forbidden', 'still no admin rights')

    const combined = await send(t, 'PATCH', url, user.access_token, { name: 'Sneaky', role: 'admin' })
    assertError(t, combined, 403, 'forbidden', 'PATCH self {name, role: admin}')
    t.equal(await column(user.user.id, 'name'), user.user.name, 'the name in the refused request was not applied')
    t.equal(await column(user.user.id, 'role'), 'user', 'role unchanged')

    assertError(t, await send(t, 'PATCH', url, user.access_token, { role: 'user' }), 403, 'forbidden', 'PATCH self {role: user}: only an admin may set a role at all')
    assertError(t, await send(t, 'PATCH', `/users/${other.user.id}`, user.access_token, { role: 'admin' }), 403, 'forbidden', 'PATCH another user {role: admin}')
    t.equal(await column(other.user.id, 'role'), 'user', 'the other user\'s role unchanged')
    assertError(t, await send(t, 'PATCH', url, user.access_token, { role: 'superuser' }), 400, 'validation_error', 'an unknown role')

    t.equal((await me(t, user.access_token)).statusCode, 200, 'the refused attempts revoked nothing')
  })

  t.test('a role change by an admin revokes the user\'s tokens; the new role holds after a new login', async (t) => {
    const admin = await makeAdmin()
    const user = await registerAndLogin(app)
    const second = await login(app, user.user.email, user.password)
    const stale = await refreshed(t, user.user.email, user.password)

    const promoted = await send(t, 'PATCH', `/users/${user.user.id}`, admin.access_token, { role: 'admin' })
    t.equal(promoted.statusCode, 200, 'promotion: 200')
    t.equal(promoted.json().role, 'admin', 'the response has the new role')
    t.equal(await column(user.user.id, 'role'), 'admin', 'stored')

    await assertDead(t, user, 'promoted user, first session')
    await assertDead(t, second, 'promoted user, second session')
    await assertDead(t, stale, 'promoted user, refreshed session')
    t.equal((await me(t, admin.access_token)).statusCode, 200, 'the admin\'s own session is untouched')

    const again = await login(app, user.user.email, user.password)
    t.equal(decodeJwt(again.access_token).role, 'admin', 'the new token carries the new role')
    const list = await send(t, 'GET', '/users', again.access_token)
    t.equal(list.statusCode, 200, 'GET /users as the promoted user: 200')

    const demoted = await send(t, 'PATCH', `/users/${user.user.id}`, admin.access_token, { role: 'user' })
    t.equal(demoted.statusCode, 200, 'demotion: 200')
    t.equal(demoted.json().role, 'user')
    await assertDead(t, again, 'demoted user')
    const third = await login(app, user.user.email, user.password)
    assertError(t, await send(t, 'GET', '/users', third.access_token), 403, 'forbidden', 'GET /users after the demotion')
  })

  // ── The last admin ─────────────────────────────────────────────────────────────────────────

  t.test('the last admin cannot demote or delete themself', async (t) => {
    await noAdmins()
    const only = await makeAdmin()
    t.equal(await adminCount(), 1, 'setup: exactly one admin')
    const url = `/users/${only.user.id}`

    const demote = await send(t, 'PATCH', url, only.access_token, { role: 'user' })
    t.equal(demote.statusCode, 409, 'demoting themself: 409')
    t.same(Object.keys(demote.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'the error shape')
    t.match(demote.json(), { statusCode: 409, error: 'Conflict', code: 'last_admin' }, 'code last_admin')
    t.type(demote.json().message, 'string')
    t.equal(await column(only.user.id, 'role'), 'admin', 'still admin')
    t.equal((await send(t, 'GET', '/users', only.access_token)).statusCode, 200, 'their token still works (nothing was revoked)')

    const stale = await refreshed(t, only.user.email, only.password)
    assertError(t, await send(t, 'DELETE', url, stale.access_token), 401, 'fresh_token_required', 'deleting themself with a refreshed token')
    const remove = await send(t, 'DELETE', url, only.access_token)
    assertError(t, remove, 409, 'last_admin', 'deleting themself with a fresh token')
    t.equal(await column(only.user.id, 'role'), 'admin', 'still there, still admin')
    t.equal(await adminCount(), 1, 'still one admin')

    const keepRole = await send(t, 'PATCH', url, only.access_token, { role: 'admin' })
    t.equal(keepRole.statusCode, 200, 'PATCH {role: admin} on themself (no change) is fine')
  })

  t.test('a refused demotion of the last admin changes nothing else in the same request', async (t) => {
    await noAdmins()
    const only = await makeAdmin()
    const response = await send(t, 'PATCH', `/users/${only.user.id}`, only.access_token, { name: 'Half Applied', role: 'user' })
    assertError(t, response, 409, 'last_admin', 'PATCH self {name, role: user}')
    t.equal(await column(only.user.id, 'role'), 'admin', 'role unchanged')
    t.equal(await column(only.user.id, 'name'), only.user.name, 'the name in the refused request was not applied')
  })

  t.test('with two admins, one may demote themself; then the other is the last', async (t) => {
    await noAdmins()
    const a = await makeAdmin()
    const b = await makeAdmin()
    t.equal(await adminCount(), 2, 'setup: two admins')

    const demote = await send(t, 'PATCH', `/users/${a.user.id}`, a.access_token, { role: 'user' })
    t.equal(demote.statusCode, 200, 'A demotes themself: 200')
    t.equal(demote.json().role, 'user')
    t.equal(await column(a.user.id, 'role'), 'user', 'stored')
    await assertDead(t, a, 'A, after their own role change')
    t.equal(await adminCount(), 1, 'one admin left')

    assertError(t, await send(t, 'PATCH', `/users/${b.user.id}`, b.access_token, { role: 'user' }), 409, 'last_admin', 'B is now the last admin')

    const c = await makeAdmin()
    const deleted = await send(t, 'DELETE', `/users/${b.user.id}`, b.access_token)
    assertNoContent(t, deleted, 'with another admin, B may delete themself (fresh)')
    t.equal(await column(b.user.id, 'role'), null, 'B is gone')
    t.equal(await column(c.user.id, 'role'), 'admin', 'C remains admin')
  })

  t.test('concurrency: two admins removing each other leave at least one admin', async (t) => {
    const rounds: Array<[string, (a: Session, b: Session) => Array<Promise<LightMyRequestResponse>>]> = [
      ['demote each other', (a, b) => [
        send(t, 'PATCH', `/users/${b.user.id}`, a.access_token, { role: 'user' }),
        send(t, 'PATCH', `/users/${a.user.id}`, b.access_token, { role: 'user' }),
      ]],
      ['each demotes themself', (a, b) => [
        send(t, 'PATCH', `/users/${a.user.id}`, a.access_token, { role: 'user' }),
        send(t, 'PATCH', `/users/${b.user.id}`, b.access_token, { role: 'user' }),
      ]],
      ['each deletes themself', (a, b) => [
        send(t, 'DELETE', `/users/${a.user.id}`, a.access_token),
        send(t, 'DELETE', `/users/${b.user.id}`, b.access_token),
      ]],
      ['delete each other', (a, b) => [
        send(t, 'DELETE', `/users/${b.user.id}`, a.access_token),
        send(t, 'DELETE', `/users/${a.user.id}`, b.access_token),
      ]],
      ['A demotes B while A deletes themself', (a, b) => [
        send(t, 'PATCH', `/users/${b.user.id}`, a.access_token, { role: 'user' }),
        send(t, 'DELETE', `/users/${a.user.id}`, a.access_token),
      ]],
    ]
    for (let repeat = 0; repeat < 3; repeat++) {
      for (const [name, race] of rounds) {
        await noAdmins()
        const a = await makeAdmin()
        const b = await makeAdmin()
        const responses = await Promise.all(race(a, b))
        const statuses = responses.map((response) => response.statusCode)
        t.ok(await adminCount() >= 1, `${name} (#${repeat + 1}): an admin remains (statuses ${statuses.join(', ')})`)
        t.ok(statuses.filter((status) => status < 300).length <= 1, `${name} (#${repeat + 1}): not both succeed`)
        for (const response of responses) {
          // The loser is refused as the last admin, or (if the winner's change revoked its token
          // first) as a revoked token; never a 500.
          t.ok([200, 204, 401, 409].includes(response.statusCode), `${name} (#${repeat + 1}): status ${response.statusCode} is 200/204/401/409`)
          if (response.statusCode === 409) t.equal(response.json().code, 'last_admin', `${name} (#${repeat + 1}): 409 is last_admin`)
          if (response.statusCode === 401) t.equal(response.json().code, 'token_revoked', `${name} (#${repeat + 1}): 401 is token_revoked`)
        }
      }
    }
  })

  // ── PUT /users/:id/password ─────────────────────────────────────────────────────────────────

  t.test('changing your own password', async (t) => {
    const user = await registerAndLogin(app)
    const other = await login(app, user.user.email, user.password)
    const url = `/users/${user.user.id}/password`
    const hash = await column(user.user.id, 'password_hash')

    const wrong = await send(t, 'PUT', url, user.access_token, { current_password: 'not the password', new_password: NEW_PASSWORD })
    assertError(t, wrong, 401, 'invalid_credentials', 'wrong current_password')
    t.equal(wrong.headers['www-authenticate'], 'Bearer realm="boardkit"', 'the token itself is fine: no error="invalid_token"')

    const missing = await send(t, 'PUT', url, user.access_token, { new_password: NEW_PASSWORD })
    assertError(t, missing, 400, 'validation_error', 'without current_password')
    t.equal(missing.json().details?.[0]?.path, '/current_password', 'details point at /current_password')

    const stale = await refreshed(t, user.user.email, user.password)
    const notFresh = await send(t, 'PUT', url, stale.access_token, { current_password: user.password, new_password: NEW_PASSWORD })
    assertError(t, notFresh, 401, 'fresh_token_required', 'with a refreshed token')

    assertError(t, await send(t, 'PUT', url, user.access_token, { current_password: user.password, new_password: 'short' }), 400, 'validation_error', 'a new password of 5 chars')
    assertError(t, await send(t, 'PUT', url, user.access_token, { current_password: user.password, new_password: NEW_PASSWORD, extra: 1 }), 400, 'validation_error', 'an unknown field')
    t.equal(await column(user.user.id, 'password_hash'), hash, 'nothing changed so far')

    const changed = await send(t, 'PUT', url, user.access_token, { current_password: user.password, new_password: NEW_PASSWORD })
    assertNoContent(t, changed, 'the change')
    const newHash = await column(user.user.id, 'password_hash')
    t.not(newHash, hash, 'a new hash')
    t.match(newHash, /^\$argon2id\$/, 'argon2id')

    await assertAlive(t, user, 'the session that changed it')
    await assertDead(t, other, 'another session of the same user')
    await assertDead(t, stale, 'a refreshed session of the same user')

    t.equal((await login(app, user.user.email, NEW_PASSWORD)).user.id, user.user.id, 'the new password logs in')
    const old = await send(t, 'POST', '/login', undefined, { email: user.user.email, password: user.password })
    assertError(t, old, 401, 'invalid_credentials', 'the old password does not')
  })

  t.test('an admin sets another user\'s password: all of that user\'s sessions die', async (t) => {
    const admin = await makeAdmin()
    const user = await registerAndLogin(app)
    const second = await login(app, user.user.email, user.password)
    const stale = await refreshed(t, user.user.email, user.password)

    const response = await send(t, 'PUT', `/users/${user.user.id}/password`, admin.access_token, { new_password: NEW_PASSWORD })
    assertNoContent(t, response, 'admin, no current_password')
    await assertDead(t, user, 'the user\'s first session')
    await assertDead(t, second, 'the user\'s second session')
    await assertDead(t, stale, 'the user\'s refreshed session')
    await assertAlive(t, admin, 'the admin\'s own session')

    t.equal((await login(app, user.user.email, NEW_PASSWORD)).user.id, user.user.id, 'the new password logs in')
    assertError(t, await send(t, 'POST', '/login', undefined, { email: user.user.email, password: user.password }), 401, 'invalid_credentials', 'the old one does not')

    // An admin's own password follows the self rules.
    const fresh = await login(app, admin.user.email, admin.password)
    assertError(t, await send(t, 'PUT', `/users/${admin.user.id}/password`, fresh.access_token, { new_password: NEW_PASSWORD }), 400, 'validation_error', 'an admin\'s own password without current_password')
  })

  // ── DELETE /users/:id ──────────────────────────────────────────────────────────────────────

  t.test('deleting yourself needs a fresh token', async (t) => {
    const user = await registerAndLogin(app)
    const stale = await refreshed(t, user.user.email, user.password)
    assertError(t, await send(t, 'DELETE', `/users/${user.user.id}`, stale.access_token), 401, 'fresh_token_required', 'DELETE self with a refreshed token')
    t.equal(await column(user.user.id, 'email'), user.user.email, 'the user still exists')
    t.equal((await me(t, stale.access_token)).statusCode, 200, 'and their tokens still work')
  })

  async function createBoards (t: Test, session: Session, n: number): Promise<number[]> {
    const ids: number[] = []
    for (let i = 0; i < n; i++) {
      const response = await send(t, 'POST', '/boards', session.access_token, { title: `Board ${i + 1} of ${session.user.id}`, content: 'content' })
      t.equal(response.statusCode, 201, `setup: board ${i + 1} created`)
      ids.push(response.json().id)
    }
    return ids
  }
  const boardsOf = (userId: number) => count('SELECT COUNT(*) AS n FROM boards WHERE user_id = ?', [userId])

  t.test('deleting yourself takes your boards and kills your tokens; others\' boards remain', async (t) => {
    const admin = await makeAdmin()
    const user = await registerAndLogin(app)
    const second = await login(app, user.user.email, user.password)
    const witness = await registerAndLogin(app)
    const doomed = await createBoards(t, user, 3)
    const kept = await createBoards(t, witness, 2)
    t.equal(await boardsOf(user.user.id), 3, 'setup: 3 boards')

    assertNoContent(t, await send(t, 'DELETE', `/users/${user.user.id}`, user.access_token), 'DELETE self (fresh)')

    t.equal(await column(user.user.id, 'email'), null, 'the user row is gone')
    t.equal(await boardsOf(user.user.id), 0, 'no board rows of theirs left')
    for (const id of doomed) assertError(t, await send(t, 'GET', `/boards/${id}`, witness.access_token), 404, 'not_found', `GET /boards/${id} (deleted user's) as another user`)
    t.equal(await boardsOf(witness.user.id), 2, 'the other user\'s board rows remain')
    for (const id of kept) t.equal((await send(t, 'GET', `/boards/${id}`, witness.access_token)).statusCode, 200, `GET /boards/${id} (other user's): 200`)

    await assertDead(t, user, 'the deleted user\'s session')
    await assertDead(t, second, 'the deleted user\'s other session')
    assertError(t, await send(t, 'POST', '/login', undefined, { email: user.user.email, password: user.password }), 401, 'invalid_credentials', 'the deleted user cannot log in')
    assertError(t, await send(t, 'GET', `/users/${user.user.id}`, admin.access_token), 404, 'not_found', 'GET /users/:id of the deleted user as admin')
    assertError(t, await send(t, 'DELETE', `/users/${user.user.id}`, admin.access_token), 404, 'not_found', 'deleting them again')
  })

  t.test('an admin deleting a user takes their boards and kills their tokens', async (t) => {
    const admin = await makeAdmin()
    const user = await registerAndLogin(app)
    const stale = await refreshed(t, user.user.email, user.password)
    const doomed = await createBoards(t, user, 3)

    assertNoContent(t, await send(t, 'DELETE', `/users/${user.user.id}`, admin.access_token), 'admin DELETE /users/:id')
    t.equal(await boardsOf(user.user.id), 0, 'their boards are gone')
    for (const id of doomed) assertError(t, await send(t, 'GET', `/boards/${id}`, admin.access_token), 404, 'not_found', `GET /boards/${id}`)
    await assertDead(t, user, 'the deleted user\'s login session')
    await assertDead(t, stale, 'the deleted user\'s refreshed session')
    t.equal((await me(t, admin.access_token)).statusCode, 200, 'the admin is unaffected')
  })

  // ── No hash, anywhere ─────────────────────────────────────────────────────────────────────

  t.test('user responses never contain password_hash', async (t) => {
    const admin = await makeAdmin()
    const body = newUser()
    const checks: Array<[string, LightMyRequestResponse, (json: any) => Array<Record<string, unknown>>]> = []

    checks.push(['POST /register', await send(t, 'POST', '/register', undefined, body), (json) => [json]])
    const loggedIn = await send(t, 'POST', '/login', undefined, { email: body.email, password: body.password })
    checks.push(['POST /login', loggedIn, (json) => [json.user]])
    const session = loggedIn.json() as Session
    checks.push(['POST /refresh', await send(t, 'POST', '/refresh', session.refresh_token), (json) => [json.user]])
    // GET /me adds the second factors (API.md §13) to the user.
    checks.push(['GET /me', await send(t, 'GET', '/me', session.access_token), ({ mfa, ...user }) => mfa ? [user] : []])
    checks.push(['GET /users/:id (self)', await send(t, 'GET', `/users/${session.user.id}`, session.access_token), (json) => [json]])
    checks.push(['PATCH /users/:id (self)', await send(t, 'PATCH', `/users/${session.user.id}`, session.access_token, { name: 'No Hash' }), (json) => [json]])
    checks.push(['GET /users', await send(t, 'GET', '/users?limit=100', admin.access_token), (json) => json.items])
    const created = await send(t, 'POST', '/users', admin.access_token, { ...newUser(), role: 'user' })
    checks.push(['POST /users', created, (json) => [json]])
    checks.push(['GET /users/:id (admin)', await send(t, 'GET', `/users/${created.json().id}`, admin.access_token), (json) => [json]])
    checks.push(['PATCH /users/:id (admin)', await send(t, 'PATCH', `/users/${created.json().id}`, admin.access_token, { role: 'admin' }), (json) => [json]])

    for (const [what, response, users] of checks) {
      t.ok(response.statusCode === 200 || response.statusCode === 201, `${what}: ${response.statusCode}`)
      t.notMatch(response.body, /password_hash|\$argon2|"password"/, `${what}: no hash or password in the body`)
      const list = users(response.json())
      t.ok(list.length > 0, `${what}: has users`)
      for (const user of list) t.same(Object.keys(user).sort(), USER_KEYS, `${what}: user ${user.id} has exactly the §4 keys`)
    }
  })
})
