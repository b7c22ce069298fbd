import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { RowDataPacket } from 'mysql2/promise'
import type { App } from '../../src/app.js'
import { bearer, build, login, newUser, registerAndLogin, type Session } from '../helper.js'

// API.md §4: who may call which user route, as one table. Every cell runs against its own
// freshly registered users, so a cell that deletes or renames someone cannot disturb another.
//
// Actors: `anonymous` (no Authorization header), `self` (a plain user acting on their own
// account), `other` (a plain user acting on somebody else's), `admin`.
// Targets: for /users/:id routes, `exists` is a real user (the actor themself for `self`) and
// `missing` an id no user has; `self × missing` cannot exist (a user who is logged in exists).
// For POST /users, `exists` means the email is already taken and `missing` a new email. GET
// /users has no target (`-`); `self` and `other` there are both just "a plain user".

type Actor = 'anonymous' | 'self' | 'other' | 'admin'
type Target = 'exists' | 'missing' | '-'
type Route = 'GET /users' | 'POST /users' | 'GET /users/:id' | 'PATCH /users/:id' | 'DELETE /users/:id' | 'PUT /users/:id/password'

const AUTH = 'authorization_required'
const MATRIX: Array<[Route, Actor, Target, number, string | null]> = [
  // route                     actor         target     status  code
  ['GET /users',               'anonymous',  '-',       401,    AUTH],
  ['GET /users',               'self',       '-',       403,    'forbidden'],
  ['GET /users',               'other',      '-',       403,    'forbidden'],
  ['GET /users',               'admin',      '-',       200,    null],

  ['POST /users',              'anonymous',  'missing', 401,    AUTH],
  ['POST /users',              'anonymous',  'exists',  401,    AUTH],
  ['POST /users',              'self',       'missing', 403,    'forbidden'],
  ['POST /users',              'self',       'exists',  403,    'forbidden'],
  ['POST /users',              'other',      'missing', 403,    'forbidden'],
  ['POST /users',              'other',      'exists',  403,    'forbidden'],
  ['POST /users',              'admin',      'missing', 201,    null],
  ['POST /users',              'admin',      'exists',  409,    'email_taken'],

  ['GET /users/:id',           'anonymous',  'exists',  401,    AUTH],
  ['GET /users/:id',           'anonymous',  'missing', 401,    AUTH],
  ['GET /users/:id',           'self',       'exists',  200,    null],
  ['GET /users/:id',           'other',      'exists',  403,    'forbidden'],
  ['GET /users/:id',           'other',      'missing', 403,    'forbidden'],
  ['GET /users/:id',           'admin',      'exists',  200,    null],
  ['GET /users/:id',           'admin',      'missing', 404,    'not_found'],

  ['PATCH /users/:id',         'anonymous',  'exists',  401,    AUTH],
  ['PATCH /users/:id',         'anonymous',  'missing', 401,    AUTH],
  ['PATCH /users/:id',         'self',       'exists',  200,    null],
  ['PATCH /users/:id',         'other',      'exists',  403,    'forbidden'],
  ['PATCH /users/:id',         'other',      'missing', 403,    'forbidden'],
  ['PATCH /users/:id',         'admin',      'exists',  200,    null],
  ['PATCH /users/:id',         'admin',      'missing', 404,    'not_found'],

  ['DELETE /users/:id',        'anonymous',  'exists',  401,    AUTH],
  ['DELETE /users/:id',        'anonymous',  'missing', 401,    AUTH],
  ['DELETE /users/:id',        'self',       'exists',  204,    null],
  ['DELETE /users/:id',        'other',      'exists',  403,    'forbidden'],
  ['DELETE /users/:id',        'other',      'missing', 403,    'forbidden'],
  ['DELETE /users/:id',        'admin',      'exists',  204,    null],
  ['DELETE /users/:id',        'admin',      'missing', 404,    'not_found'],

  ['PUT /users/:id/password',  'anonymous',  'exists',  401,    AUTH],
  ['PUT /users/:id/password',  'anonymous',  'missing', 401,    AUTH],
  ['PUT /users/:id/password',  'self',       'exists',  204,    null],
  ['PUT /users/:id/password',  'other',      'exists',  403,    'forbidden'],
  ['PUT /users/:id/password',  'other',      'missing', 403,    'forbidden'],
  ['PUT /users/:id/password',  'admin',      'exists',  204,    null],
  ['PUT /users/:id/password',  'admin',      'missing', 404,    'not_found'],
]

const MISSING_ID = 987_654_321
const USER_KEYS = ['created_at', 'email', 'email_verified_at', 'id', 'name', 'role', 'updated_at']
const NEW_NAME = 'Renamed By Matrix'
const NEW_PASSWORD = 'a brand new passphrase'

interface UserRow { id: number, email: string, name: string, role: string, password_hash: string }

async function userRow (app: App, id: number): Promise<UserRow | null> {
  const [rows] = await app.pool.query<RowDataPacket[]>('SELECT id, email, name, role, password_hash FROM users WHERE id = ?', [id])
  return (rows[0] as UserRow | undefined) ?? null
}

async function countEmail (app: App, email: string): Promise<number> {
  const [rows] = await app.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM users WHERE email = ?', [email.toLowerCase()])
  return Number(rows[0]!.n)
}

/** A user object of §4: exactly these keys, never a hash. */
function assertUser (t: Test, user: Record<string, unknown>, what: string) {
  t.same(Object.keys(user).sort(), USER_KEYS, `${what}: the user object's keys, no password_hash`)
}

/** Every 200/201 body: no hash anywhere in it. */
function assertNoHash (t: Test, response: LightMyRequestResponse, what: string) {
  t.notMatch(response.body, /password_hash|\$argon2/, `${what}: no password_hash in the body`)
}

t.test('users: access matrix (API.md §4)', async (t) => {
  const app = await build(t)

  const admin = await registerAndLogin(app)
  await app.pool.query("UPDATE users SET role='admin' WHERE id=?", [admin.user.id])

  for (const [route, actor, target, status, code] of MATRIX) {
    t.test(`${route} | ${actor} | ${target} → ${status}${code ? ` ${code}` : ''}`, async (t) => {
      // The actor's session and password (none for anonymous).
      let session: Session | null = null
      let actorPassword = ''
      if (actor === 'admin') {
        session = admin
        actorPassword = admin.password
      } else if (actor === 'self' || actor === 'other') {
        const registered = await registerAndLogin(app)
        session = registered
        actorPassword = registered.password
      }

      // The target: a user of its own (or the actor themself), or an id nobody has.
      const targetBody = newUser()
      let targetId = MISSING_ID
      if (target === 'exists' && actor === 'self') {
        targetId = session!.user.id
        targetBody.email = session!.user.email
        targetBody.password = actorPassword
      } else if (target === 'exists') {
        const registered = await app.inject({ method: 'POST', url: '/register', payload: targetBody })
        t.equal(registered.statusCode, 201, 'setup: target registered')
        targetId = registered.json().id
      }
      const before = target === 'exists' && route !== 'POST /users' ? await userRow(app, targetId) : null

      // POST /users: `exists` reuses the target's email in another case, `missing` a new one.
      const created = newUser()
      const postEmail = target === 'exists' ? targetBody.email.toUpperCase() : created.email
      const emailCountBefore = route === 'POST /users' ? await countEmail(app, postEmail) : 0

      const url = `/users/${targetId}`
      const requests: Record<Route, { method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object }> = {
        'GET /users': { method: 'GET', url: '/users' },
        'POST /users': { method: 'POST', url: '/users', payload: { email: postEmail, name: created.name, password: created.password, role: 'admin' } },
        'GET /users/:id': { method: 'GET', url },
        'PATCH /users/:id': { method: 'PATCH', url, payload: { name: NEW_NAME } },
        'DELETE /users/:id': { method: 'DELETE', url },
        'PUT /users/:id/password': {
          method: 'PUT',
          url: `${url}/password`,
          payload: actor === 'admin' ? { new_password: NEW_PASSWORD } : { current_password: actorPassword, new_password: NEW_PASSWORD },
        },
      }
      const request = requests[route]
      const response = await app.inject({ ...request, headers: session ? bearer(session.access_token) : {} })

      t.equal(response.statusCode, status, `status ${status}`)

      if (code !== null) {
        // An error: the §1 shape, nothing else, and no change to anyone.
        const body = response.json()
        t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'the error shape and nothing else')
        t.equal(body.code, code, `code ${code}`)
        t.equal(body.statusCode, status, 'statusCode in the body')
        if (status === 401) t.equal(response.headers['www-authenticate'], 'Bearer realm="boardkit"', 'WWW-Authenticate without error= (no token sent)')
        if (before) t.same(await userRow(app, targetId), before, 'the target user is unchanged')
        if (route === 'POST /users') t.equal(await countEmail(app, postEmail), emailCountBefore, 'no user was created')
        if (target === 'missing' && route !== 'POST /users') t.equal(await userRow(app, MISSING_ID), null, 'the missing user is still missing')
        return
      }

      switch (route) {
        case 'GET /users': {
          assertNoHash(t, response, route)
          const page = response.json()
          t.same(Object.keys(page).sort(), ['items', 'next_cursor'], '{items, next_cursor}')
          t.ok(Array.isArray(page.items) && page.items.length > 0, 'items is a non-empty array')
          for (const item of page.items) assertUser(t, item, `item ${item.id}`)
          break
        }
        case 'POST /users': {
          assertNoHash(t, response, route)
          const user = response.json()
          assertUser(t, user, route)
          t.equal(response.headers.location, `/users/${user.id}`, 'Location of the new user')
          t.equal(user.email, postEmail.toLowerCase(), 'email stored lower-case')
          t.equal(user.name, created.name)
          t.equal(user.role, 'admin', 'the requested role is honoured')
          t.equal((await userRow(app, user.id))?.role, 'admin', 'role admin in the database')
          const fetched = await app.inject({ method: 'GET', url: `/users/${user.id}`, headers: bearer(admin.access_token) })
          t.equal(fetched.statusCode, 200, 'the new user can be read')
          // The password was hashed, and works.
          const session = await login(app, postEmail, created.password)
          t.equal(session.user.role, 'admin', 'the new user logs in with the given password')
          break
        }
        case 'GET /users/:id': {
          assertNoHash(t, response, route)
          const user = response.json()
          assertUser(t, user, route)
          t.equal(user.id, targetId, 'the requested user')
          t.equal(user.email, targetBody.email.toLowerCase())
          break
        }
        case 'PATCH /users/:id': {
          assertNoHash(t, response, route)
          const user = response.json()
          assertUser(t, user, route)
          t.equal(user.id, targetId)
          t.equal(user.name, NEW_NAME, 'the new name in the response')
          t.equal((await userRow(app, targetId))?.name, NEW_NAME, 'the new name is stored')
          t.equal(user.role, 'user', 'role unchanged')
          break
        }
        case 'DELETE /users/:id': {
          t.equal(response.body, '', 'no body')
          t.equal(await userRow(app, targetId), null, 'the user is gone')
          break
        }
        case 'PUT /users/:id/password': {
          t.equal(response.body, '', 'no body')
          const after = await userRow(app, targetId)
          t.not(after?.password_hash, before?.password_hash, 'the hash changed')
          const relogin = await app.inject({ method: 'POST', url: '/login', payload: { email: targetBody.email, password: NEW_PASSWORD } })
          t.equal(relogin.statusCode, 200, 'the new password logs in')
          const old = await app.inject({ method: 'POST', url: '/login', payload: { email: targetBody.email, password: targetBody.password } })
          t.equal(old.statusCode, 401, 'the old password does not')
          break
        }
      }
    })
  }

  t.test('every cell of the matrix is there: 4 actors × 6 routes × {exists, missing}', async (t) => {
    const cells = new Set(MATRIX.map(([route, actor, target]) => `${route}|${actor}|${target}`))
    t.equal(cells.size, MATRIX.length, 'no cell twice')
    const routes: Route[] = ['GET /users', 'POST /users', 'GET /users/:id', 'PATCH /users/:id', 'DELETE /users/:id', 'PUT /users/:id/password']
    for (const route of routes) {
      for (const actor of ['anonymous', 'self', 'other', 'admin'] as Actor[]) {
        const targets: Target[] = route === 'GET /users' ? ['-'] : actor === 'self' && route !== 'POST /users' ? ['exists'] : ['exists', 'missing']
        for (const target of targets) t.ok(cells.has(`${route}|${actor}|${target}`), `${route} | ${actor} | ${target}`)
      }
    }
  })
})
