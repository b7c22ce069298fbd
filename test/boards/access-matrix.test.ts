import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { bearer, build, login, newUser, registerAndLogin, type Session } from '../helper.js'

// API.md §5 (every board route needs an access token; only the author or an admin may change a
// board; missing → 404) and §4 (GET /users/:id/boards). One cell per role × route × target.

type Role = 'anonymous' | 'owner' | 'other' | 'admin'
type Route = 'GET /boards' | 'POST /boards' | 'GET /boards/:id' | 'PUT /boards/:id' | 'PATCH /boards/:id' |
  'DELETE /boards/:id' | 'GET /users/:id/boards'
/** `exists`: the owner's board (or the owner, for /users/:id/boards); `missing`: an id that was deleted. */
type Target = 'exists' | 'missing'
type Row = [Route, Target, anonymous: number, owner: number, other: number, admin: number]

const ROLES: Role[] = ['anonymous', 'owner', 'other', 'admin']

// The expected status of every cell. Where a route has no path id the target only changes the
// query: `GET /boards?author_id=<missing user>` is an empty page (only /users/:id/boards 404s,
// per its OpenAPI description); POST /boards has nothing to miss, both rows are the same.
const MATRIX: Row[] = [
  // route                   target      anon  owner other admin
  ['GET /boards',            'exists',   401,  200,  200,  200],
  ['GET /boards',            'missing',  401,  200,  200,  200],
  ['POST /boards',           'exists',   401,  201,  201,  201],
  ['POST /boards',           'missing',  401,  201,  201,  201],
  ['GET /boards/:id',        'exists',   401,  200,  200,  200],
  ['GET /boards/:id',        'missing',  401,  404,  404,  404],
  ['PUT /boards/:id',        'exists',   401,  200,  403,  200],
  ['PUT /boards/:id',        'missing',  401,  404,  404,  404],
  ['PATCH /boards/:id',      'exists',   401,  200,  403,  200],
  ['PATCH /boards/:id',      'missing',  401,  404,  404,  404],
  ['DELETE /boards/:id',     'exists',   401,  204,  403,  204],
  ['DELETE /boards/:id',     'missing',  401,  404,  404,  404],
  ['GET /users/:id/boards',  'exists',   401,  200,  200,  200],
  ['GET /users/:id/boards',  'missing',  401,  404,  404,  404],
]

const ERROR_CODES: Record<number, string> = { 401: 'authorization_required', 403: 'forbidden', 404: 'not_found' }
const ERROR_NAMES: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }

interface Board { id: number, title: string, content: string, author: { id: number, name: string }, created_at: string, updated_at: string }

function assertError (t: Test, response: LightMyRequestResponse, status: number, what: string) {
  t.equal(response.statusCode, status, `${what}: ${status}`)
  const body = response.json()
  t.equal(body.code, ERROR_CODES[status], `${what}: code ${ERROR_CODES[status]}`)
  t.same(body, { statusCode: status, error: ERROR_NAMES[status], code: ERROR_CODES[status], message: body.message }, `${what}: the error shape and nothing else`)
  t.type(body.message, 'string', `${what}: a message`)
  if (status === 401) t.equal(response.headers['www-authenticate'], 'Bearer realm="boardkit"', `${what}: WWW-Authenticate without error=, no token was sent`)
}

t.test('board routes: role × route × exists/missing', async (t) => {
  const app = await build(t)

  const owner = await registerAndLogin(app)
  const other = await registerAndLogin(app)
  const adminUser = newUser()
  const registeredAdmin = await registerAndLogin(app, adminUser)
  await app.pool.query("UPDATE users SET role='admin' WHERE id=?", [registeredAdmin.user.id])
  const admin = await login(app, adminUser.email, adminUser.password)
  t.equal(admin.user.role, 'admin', 'the admin is an admin')

  const sessions: Record<Exclude<Role, 'anonymous'>, Session> = { owner, other, admin }
  const headersOf = (role: Role) => (role === 'anonymous' ? {} : bearer(sessions[role].access_token))

  let serial = 0
  const createBoard = async (): Promise<Board> => {
    serial += 1
    const response = await app.inject({ method: 'POST', url: '/boards', headers: bearer(owner.access_token), payload: { title: `Board ${serial}`, content: `Content ${serial}` } })
    if (response.statusCode !== 201) throw new Error(`create failed: ${response.body}`)
    return response.json()
  }
  const readBoard = (id: number) => app.inject({ method: 'GET', url: `/boards/${id}`, headers: bearer(owner.access_token) })

  // Ids that existed once and no longer do, so they are plausible, not absurd.
  const deleted = await createBoard()
  t.equal((await app.inject({ method: 'DELETE', url: `/boards/${deleted.id}`, headers: bearer(owner.access_token) })).statusCode, 204)
  const missingBoardId = deleted.id
  const gone = await registerAndLogin(app)
  await app.pool.query('DELETE FROM users WHERE id=?', [gone.user.id])
  const missingUserId = gone.user.id

  for (const [route, target, ...statuses] of MATRIX) {
    ROLES.forEach((role, column) => {
      const status = statuses[column]!
      t.test(`${role} ${route} (${target}) → ${status}`, async (t) => {
        // A fresh board for every cell, so a mutating cell never depends on an earlier one.
        const board = await createBoard()
        const boardId = target === 'exists' ? board.id : missingBoardId
        const headers = headersOf(role)
        const what = `${role} ${route} ${target}`
        const [method, path] = route.split(' ') as ['GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', string]

        let url = path.replace('/boards/:id', `/boards/${boardId}`)
        if (route === 'GET /users/:id/boards') url = `/users/${target === 'exists' ? owner.user.id : missingUserId}/boards`
        if (route === 'GET /boards' && target === 'missing') url = `/boards?author_id=${missingUserId}`
        const payload = method === 'PUT'
          ? { title: `Replaced by ${role}`, content: `New content by ${role}` }
          : method === 'PATCH' ? { title: `Patched by ${role}` } : method === 'POST' ? { title: `Posted by ${role}`, content: 'Hello' } : undefined

        const response = await app.inject({ method, url, headers, ...(payload && { payload }) })

        if (status >= 400) {
          assertError(t, response, status, what)
          // A refused change changed nothing.
          if (target === 'exists' && method !== 'GET' && method !== 'POST') {
            const after = await readBoard(board.id)
            t.equal(after.statusCode, 200, `${what}: the board still exists`)
            t.same(after.json(), board, `${what}: the board is unchanged`)
          }
          return
        }

        t.equal(response.statusCode, status, `${what}: ${status}`)
        const caller = sessions[role as Exclude<Role, 'anonymous'>].user
        switch (route) {
          case 'GET /boards': {
            const page = response.json()
            if (target === 'exists') {
              t.equal(page.items[0]?.id, board.id, `${what}: the newest board comes first`)
              t.same(page.items[0], board, `${what}: the board as it was created`)
            } else {
              t.same(page, { items: [], next_cursor: null }, `${what}: an empty page for an author who does not exist`)
            }
            break
          }
          case 'POST /boards': {
            const created = response.json()
            t.equal(response.headers.location, `/boards/${created.id}`, `${what}: Location /boards/<id>`)
            t.same(created.author, { id: caller.id, name: caller.name }, `${what}: the author is the caller`)
            t.equal(created.title, `Posted by ${role}`)
            t.equal(created.content, 'Hello')
            const again = await app.inject({ method: 'GET', url: String(response.headers.location), headers })
            t.same(again.json(), created, `${what}: the Location reads back the same board`)
            break
          }
          case 'GET /boards/:id':
            t.same(response.json(), board, `${what}: the board`)
            break
          case 'PUT /boards/:id':
          case 'PATCH /boards/:id': {
            const updated = response.json()
            t.equal(updated.id, board.id)
            t.equal(updated.title, method === 'PUT' ? `Replaced by ${role}` : `Patched by ${role}`, `${what}: title changed`)
            t.equal(updated.content, method === 'PUT' ? `New content by ${role}` : board.content, `${what}: content ${method === 'PUT' ? 'replaced' : 'kept'}`)
            t.same(updated.author, board.author, `${what}: the author stays the owner, even when an admin edits`)
            t.equal(updated.created_at, board.created_at, `${what}: created_at unchanged`)
            t.same((await readBoard(board.id)).json(), updated, `${what}: the change is stored`)
            break
          }
          case 'DELETE /boards/:id':
            t.equal(response.body, '', `${what}: no body`)
            assertError(t, await readBoard(board.id), 404, `${what}: then GET`)
            break
          case 'GET /users/:id/boards': {
            const page = response.json()
            t.equal(page.items[0]?.id, board.id, `${what}: the owner's newest board first`)
            t.ok(page.items.every((item: Board) => item.author.id === owner.user.id), `${what}: only the owner's boards`)
            break
          }
        }
      })
    })
  }

  t.test('the matrix covers every cell', async (t) => {
    t.equal(MATRIX.length, 14, '7 routes × 2 targets')
    t.equal(new Set(MATRIX.map(([route, target]) => `${route} ${target}`)).size, 14, 'no cell twice')
  })
})
