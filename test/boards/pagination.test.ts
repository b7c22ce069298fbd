import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { bearer, build, registerAndLogin } from '../helper.js'

// API.md §5 (GET /boards: newest first, keyset pagination, stable under concurrent inserts) and
// §4 (GET /users/:id/boards = GET /boards?author_id=:id; limit 1–100, default 20; next_cursor
// null on the last page). Subtests run in order and share one database: the walks come first,
// while the table holds exactly the boards they expect.

interface Board { id: number, title: string, content: string, author: { id: number, name: string } }
interface Page { items: Board[], next_cursor: string | null }

const b64 = (text: string) => Buffer.from(text).toString('base64url')

async function allBoardIds (app: App): Promise<number[]> {
  const [rows] = await app.pool.query('SELECT id FROM boards ORDER BY id DESC')
  return (rows as Array<{ id: number | string }>).map((row) => Number(row.id))
}

function assertValidationError (t: Test, response: LightMyRequestResponse, what: string, path?: string | RegExp) {
  t.equal(response.statusCode, 400, `${what}: 400`)
  const body = response.json()
  t.equal(body.code, 'validation_error', `${what}: validation_error`)
  t.equal(body.error, 'Bad Request', `${what}: Bad Request`)
  t.type(body.details?.[0]?.path, 'string', `${what}: details[0].path`)
  if (typeof path === 'string') t.equal(body.details?.[0]?.path, path, `${what}: details[0].path is ${path}`)
  else if (path) t.match(body.details?.[0]?.path, path, `${what}: details[0].path matches ${path}`)
  t.notMatch(response.body, /at \w+ \(|sql|select |stack/i, `${what}: nothing leaks`)
}

t.test('boards pagination', async (t) => {
  const app = await build(t)
  const author = await registerAndLogin(app)
  const token = author.access_token
  const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer(token) })
  const getPage = async (url: string): Promise<Page> => {
    const response = await get(url)
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`)
    return response.json()
  }
  const insert = (count: number, userId: number, label: string) =>
    app.repos.boards.createMany(Array.from({ length: count }, (_, i) => ({ title: `${label} ${i}`, content: `${label} content ${i}`, user_id: userId })))

  await insert(250, author.user.id, 'seed')
  const original = await allBoardIds(app)
  t.equal(original.length, 250, '250 boards to page through')

  /** Follows next_cursor to the end; `between` runs before each request after the first. */
  async function walk (t: Test, limit: number, between?: (page: number) => Promise<void>) {
    const pages: Page[] = []
    let url = `/boards?limit=${limit}`
    for (;;) {
      const page = await getPage(url)
      pages.push(page)
      if (page.next_cursor === null) break
      t.ok(pages.length < 20, 'the walk ends')
      if (pages.length >= 20) break
      if (between) await between(pages.length)
      url = `/boards?limit=${limit}&cursor=${encodeURIComponent(page.next_cursor)}`
    }
    return pages
  }

  function assertStrictlyDecreasing (t: Test, ids: number[], what: string) {
    const violations = ids.filter((id, i) => i > 0 && id >= ids[i - 1]!)
    t.same(violations, [], `${what}: ids strictly decreasing (newest first)`)
  }

  t.test('walking limit=100 sees each of the 250 boards exactly once, newest first, in 3 pages', async (t) => {
    const pages = await walk(t, 100)
    t.same(pages.map((page) => page.items.length), [100, 100, 50], '3 pages: 100, 100, 50')
    t.equal(pages.at(-1)!.next_cursor, null, 'the last page has next_cursor null')
    t.ok(pages.slice(0, -1).every((page) => typeof page.next_cursor === 'string' && page.next_cursor.length > 0), 'every other page has a cursor')
    const ids = pages.flatMap((page) => page.items.map((board) => board.id))
    t.equal(new Set(ids).size, ids.length, 'no id twice')
    assertStrictlyDecreasing(t, ids, 'across pages')
    t.same(ids, original, 'exactly the 250 boards, newest first')
    t.ok(pages.every((page) => page.items.every((board) => board.author.id === author.user.id && board.author.name === author.user.name)), 'every item carries its author')
  })

  t.test('a walk is stable while boards are inserted between page requests', async (t) => {
    const before = await allBoardIds(app)
    const inserted: number[] = []
    const pages = await walk(t, 100, async (page) => {
      // Both through the API and in bulk, a few at a time, between every two requests.
      for (let i = 0; i < 3; i += 1) {
        const response = await app.inject({ method: 'POST', url: '/boards', headers: bearer(token), payload: { title: `during walk ${page}.${i}`, content: '' } })
        inserted.push(response.json().id)
      }
      await insert(5, author.user.id, `bulk during walk ${page}`)
    })
    const after = await allBoardIds(app)
    inserted.push(...after.filter((id) => !before.includes(id) && !inserted.includes(id)))
    t.equal(inserted.length, 16, '2 pauses × (3 + 5) boards inserted during the walk')

    const ids = pages.flatMap((page) => page.items.map((board) => board.id))
    t.same(pages.map((page) => page.items.length), [100, 100, 50], 'still 3 pages of 100, 100, 50')
    t.equal(new Set(ids).size, ids.length, 'no id twice')
    t.same(ids.filter((id) => inserted.includes(id)), [], 'no board inserted during the walk appears in it')
    t.same(ids, before, 'nothing of the original boards skipped or duplicated, newest first')
    assertStrictlyDecreasing(t, ids, 'across pages')

    const fresh = await getPage('/boards?limit=100')
    t.same(fresh.items.slice(0, 16).map((board) => board.id), [...inserted].sort((a, b) => b - a), 'a new walk starts with the newly inserted boards')
  })

  t.test('default limit is 20', async (t) => {
    const page = await getPage('/boards')
    t.equal(page.items.length, 20, '20 items without ?limit')
    t.type(page.next_cursor, 'string', 'and a next_cursor')
    const next = await getPage(`/boards?cursor=${page.next_cursor}`)
    t.equal(next.items.length, 20, 'the next page is 20 too')
    t.ok(next.items[0]!.id < page.items.at(-1)!.id, 'and continues after the first')
  })

  t.test('limit 1 and 100 are accepted', async (t) => {
    t.equal((await getPage('/boards?limit=1')).items.length, 1)
    t.equal((await getPage('/boards?limit=100')).items.length, 100)
  })

  t.test('author filter: ?author_id=X and /users/X/boards give X\'s boards only, the same pages', async (t) => {
    const x = await registerAndLogin(app)
    const y = await registerAndLogin(app)
    const nobody = await registerAndLogin(app)
    // Interleaved, so that X's boards are not one contiguous id range.
    await app.repos.boards.createMany(Array.from({ length: 55 }, (_, i) => ({ title: `mix ${i}`, content: '', user_id: i % 2 === 0 ? x.user.id : y.user.id })))

    const filtered = await getPage(`/boards?author_id=${x.user.id}&limit=100`)
    t.equal(filtered.items.length, 28, 'all 28 of X\'s boards')
    t.ok(filtered.items.every((board) => board.author.id === x.user.id), 'only X\'s boards')
    t.same(filtered.items[0]!.author, { id: x.user.id, name: x.user.name }, 'author {id, name}')
    t.equal(filtered.next_cursor, null, 'one page')
    assertStrictlyDecreasing(t, filtered.items.map((board) => board.id), 'filtered')
    const byUser = await getPage(`/users/${x.user.id}/boards?limit=100`)
    t.same(byUser, filtered, '/users/X/boards gives the same page')

    const ofY = await getPage(`/boards?author_id=${y.user.id}&limit=100`)
    t.equal(ofY.items.length, 27, 'Y has the other 27')
    t.ok(ofY.items.every((board) => board.author.id === y.user.id), 'only Y\'s boards')

    // Walk both with a small limit: the same pages, the same cursors.
    let filteredUrl: string | null = `/boards?author_id=${x.user.id}&limit=6`
    let userUrl: string | null = `/users/${x.user.id}/boards?limit=6`
    const walked: number[] = []
    let pageCount = 0
    while (filteredUrl && userUrl && pageCount < 20) {
      const a = await getPage(filteredUrl)
      const b = await getPage(userUrl)
      t.same(b, a, `page ${pageCount + 1} is the same on both routes`)
      walked.push(...a.items.map((board) => board.id))
      pageCount += 1
      filteredUrl = a.next_cursor && `/boards?author_id=${x.user.id}&limit=6&cursor=${a.next_cursor}`
      userUrl = b.next_cursor && `/users/${x.user.id}/boards?limit=6&cursor=${b.next_cursor}`
    }
    t.equal(pageCount, 5, '28 boards in pages of 6: 5 pages')
    t.same(walked, filtered.items.map((board) => board.id), 'walking by 6 gives the same boards in the same order')

    t.same(await getPage(`/boards?author_id=${nobody.user.id}`), { items: [], next_cursor: null }, 'an author without boards: an empty page')
    t.same(await getPage(`/users/${nobody.user.id}/boards`), { items: [], next_cursor: null }, 'the same on /users/:id/boards')
  })

  t.test('an invalid limit is 400 validation_error at /limit', async (t) => {
    for (const limit of ['0', '101', 'abc', '1.5', '-1', '-100', '', '1e3']) {
      for (const base of ['/boards', `/users/${author.user.id}/boards`]) {
        assertValidationError(t, await get(`${base}?limit=${limit}`), `${base}?limit=${limit}`, '/limit')
      }
    }
  })

  t.test('a cursor this API did not make is 400 validation_error, never 500', async (t) => {
    const page = await getPage('/boards?limit=5')
    const valid = page.next_cursor!
    t.equal(b64(`v1:${page.items.at(-1)!.id}`), valid, 'the cursor is what the tampering below assumes')
    const change = (text: string, index: number) => text.slice(0, index) + (text[index] === 'A' ? 'B' : 'A') + text.slice(index + 1)

    const tampered: Array<[string, string]> = [
      ['a random string', 'not-a-cursor'],
      ['random base64url', 'c29tZXRoaW5nIGVsc2U'],
      ['base64url of v1:abc', b64('v1:abc')],
      ['base64url of v2:5', b64('v2:5')],
      ['base64url of v1:0', b64('v1:0')],
      ['base64url of v1:-5', b64('v1:-5')],
      ['base64url of v1:05', b64('v1:05')],
      ['base64url of v1:1.5', b64('v1:1.5')],
      ['base64url of 17 digits', b64('v1:12345678901234567')],
      ['base64url of a bare id', b64('42')],
      ['the valid cursor with its first character changed', change(valid, 0)],
      ['the valid cursor with its third character changed', change(valid, 2)],
      ['the valid cursor with a character appended', `${valid}A`],
      ['the valid cursor with = padding', `${valid}=`.padEnd(Math.ceil(valid.length / 4) * 4, '=')],
      ['the valid cursor in standard base64 with a + or /', Buffer.from(`v1:${page.items.at(-1)!.id}`).toString('base64').replace(/[A-Za-z]/, '+')],
      ['a 65-character string', 'A'.repeat(65)],
      ['an empty cursor', ''],
      ['a cursor with a NUL byte', encodeURIComponent('\u0000')],
      ['a cursor of non-ASCII', encodeURIComponent('ü😀')],
    ]
    for (const [what, cursor] of tampered) {
      for (const base of ['/boards?', `/users/${author.user.id}/boards?`, `/boards?author_id=${author.user.id}&`]) {
        const response = await get(`${base}cursor=${cursor}`)
        t.not(response.statusCode, 500, `${what} on ${base}: not 500`)
        assertValidationError(t, response, `${what} on ${base}`, '/cursor')
      }
    }
    t.equal((await get(`/boards?cursor=${valid}`)).statusCode, 200, 'the untouched cursor still works')
  })

  t.test('an unknown query parameter is 400 validation_error', async (t) => {
    assertValidationError(t, await get('/boards?foo=1'), '/boards?foo=1', '/foo')
    assertValidationError(t, await get('/boards?offset=20'), '/boards?offset=20', '/offset')
    assertValidationError(t, await get(`/users/${author.user.id}/boards?author_id=1`), '/users/:id/boards?author_id=1', '/author_id')
  })

  t.test('an invalid author_id is 400 validation_error at /author_id', async (t) => {
    for (const id of ['0', '-1', 'abc', '1.5']) assertValidationError(t, await get(`/boards?author_id=${id}`), `?author_id=${id}`, '/author_id')
  })
})
