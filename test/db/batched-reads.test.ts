import t from 'tap'
import { bearer, build, login, registerAndLogin } from '../helper.js'

// Token checks, board reads and pages that arrive together are answered by one statement (see
// src/db/batch.ts). Each request must still get its own answer: fire requests in every state
// at once, interleaved, and check every response.

t.test('concurrent token checks each get their own answer', async (t) => {
  const app = await build(t)
  const alice = await registerAndLogin(app)
  const bob = await registerAndLogin(app)
  const carol = await registerAndLogin(app)
  const dave = await registerAndLogin(app)

  // alice: a second session, logged out (its jti and sid are revoked).
  const aliceLoggedOut = await login(app, alice.user.email, alice.password)
  t.equal((await app.inject({ method: 'POST', url: '/logout', headers: bearer(aliceLoggedOut.access_token) })).statusCode, 204)
  // carol: deleted, so her token's user row is gone.
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${carol.user.id}`, headers: bearer(carol.access_token) })).statusCode, 204)
  // dave: a second session logs out the others, so the first session is revoked by its sid.
  const daveOther = await login(app, dave.user.email, dave.password)
  t.equal((await app.inject({ method: 'POST', url: '/logout?scope=others', headers: bearer(daveOther.access_token) })).statusCode, 204)

  const cases = [
    { what: 'alice, live session', token: alice.access_token, userId: alice.user.id },
    { what: 'alice, logged-out session', token: aliceLoggedOut.access_token, userId: null },
    { what: 'bob, live session', token: bob.access_token, userId: bob.user.id },
    { what: 'carol, deleted user', token: carol.access_token, userId: null },
    { what: 'dave, session revoked by "others"', token: dave.access_token, userId: null },
    { what: 'dave, the session that stayed', token: daveOther.access_token, userId: dave.user.id },
  ]
  // Each case five times, interleaved, all in flight together.
  const requests = Array.from({ length: 5 }, () => cases).flat()
  const responses = await Promise.all(requests.map(({ token }) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })))
  responses.forEach((response, i) => {
    const { what, userId } = requests[i]!
    if (userId === null) {
      t.equal(response.statusCode, 401, `${what}: 401`)
      t.equal(response.json().code, 'token_revoked', `${what}: token_revoked`)
    } else {
      t.equal(response.statusCode, 200, `${what}: 200`)
      t.equal(response.json().id, userId, `${what}: its own user`)
    }
  })
})

t.test('concurrent board reads each get their own board', async (t) => {
  const app = await build(t)
  const author = await registerAndLogin(app)
  const ids: number[] = []
  for (const title of ['first', 'second', 'third']) {
    const created = await app.inject({ method: 'POST', url: '/boards', headers: bearer(author.access_token), payload: { title, content: `${title} content` } })
    ids.push(created.json().id)
  }
  const missing = ids[2]! + 1000
  const wanted = [ids[0]!, missing, ids[1]!, ids[0]!, ids[2]!, missing, ids[1]!]
  const responses = await Promise.all(wanted.map((id) => app.inject({ method: 'GET', url: `/boards/${id}`, headers: bearer(author.access_token) })))
  responses.forEach((response, i) => {
    const id = wanted[i]!
    if (id === missing) {
      t.equal(response.statusCode, 404, `board ${id} (missing): 404`)
    } else {
      const board = response.json()
      t.equal(response.statusCode, 200, `board ${id}: 200`)
      t.equal(board.id, id, `board ${id}: itself`)
      t.equal(board.content, `${board.title} content`, `board ${id}: its own content`)
      t.same(board.author, { id: author.user.id, name: author.user.name }, `board ${id}: its author`)
    }
  })
})

t.test('concurrent page reads each get their own page', async (t) => {
  const app = await build(t)
  const alice = await registerAndLogin(app)
  const bob = await registerAndLogin(app)
  for (let i = 0; i < 6; i++) {
    for (const author of [alice, bob]) {
      await app.inject({ method: 'POST', url: '/boards', headers: bearer(author.access_token), payload: { title: `${author.user.name} ${i}`, content: '' } })
    }
  }
  const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer(alice.access_token) })
  const secondPage = (await get('/boards?limit=3')).json().next_cursor as string
  const urls = [
    '/boards?limit=3', '/boards?limit=5', `/boards?limit=3&cursor=${secondPage}`,
    `/boards?author_id=${alice.user.id}&limit=4`, `/boards?author_id=${bob.user.id}&limit=4`,
    `/boards?author_id=${bob.user.id}&limit=2&cursor=${secondPage}`, `/users/${alice.user.id}/boards?limit=100`,
    '/boards?limit=3', `/boards?author_id=${alice.user.id}&limit=4`,
  ]
  // Each page read alone, then all of them at once: the answers must be the same.
  type Page = { items: Array<{ author: { id: number } }>, next_cursor: string | null }
  const alone: Page[] = []
  for (const url of urls) alone.push((await get(url)).json())
  const together = await Promise.all(urls.map(async (url) => (await get(url)).json()))
  urls.forEach((url, i) => t.same(together[i], alone[i], `${url}: the same page as when read alone`))
  t.equal(alone[0]!.items.length, 3, 'control: the pages are not empty')
  t.ok(alone[4]!.items.every((board) => board.author.id === bob.user.id), 'control: the author filter applies')
})
