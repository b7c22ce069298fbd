import t from 'tap'
import { bearer, build, createTestDatabase, newUser, registerAndLogin } from '../helper.js'

// The per-account lockout (API.md §6, §12): an attempt is counted before the password is
// checked, so of any burst of wrong passwords for one email at most LOGIN_MAX_FAILURES reach
// argon2, however concurrent, on one instance or many. A 401 is a password that was checked;
// a 429 is one refused before any check.

const MAX_FAILURES = 10
const limits = { LOGIN_MAX_FAILURES: String(MAX_FAILURES), LOGIN_LOCKOUT_WINDOW: '15m' }

function tally (statuses: number[]) {
  return { checked: statuses.filter((status) => status === 401).length, refused: statuses.filter((status) => status === 429).length }
}

t.test('60 concurrent wrong passwords for one email: at most LOGIN_MAX_FAILURES are checked', async (t) => {
  const app = await build(t, limits)
  const user = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/register', payload: user })).statusCode, 201)
  const responses = await Promise.all(Array.from({ length: 60 }, () =>
    app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'wrong password!' } })))
  const { checked, refused } = tally(responses.map((response) => response.statusCode))
  t.equal(checked + refused, 60, 'every answer is a 401 or a 429')
  t.equal(checked, MAX_FAILURES, `${checked} checked (401), ${refused} refused (429)`)
  const refusal = responses.find((response) => response.statusCode === 429)!
  t.equal(refusal.json().code, 'rate_limited', '429 rate_limited')
  t.ok(Number(refusal.headers['retry-after']) > 0, 'with Retry-After')

  const right = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })
  t.equal(right.statusCode, 429, 'while locked, even the right password is refused unchecked')
})

t.test('two instances on one database share the count', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const first = await build(t, { ...limits, DATABASE_URL })
  const second = await build(t, { ...limits, DATABASE_URL })
  const user = newUser()
  t.equal((await first.inject({ method: 'POST', url: '/register', payload: user })).statusCode, 201)
  const responses = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    (i % 2 === 0 ? first : second).inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'wrong password!' } })))
  const { checked, refused } = tally(responses.map((response) => response.statusCode))
  t.equal(checked + refused, 60, 'every answer is a 401 or a 429')
  t.equal(checked, MAX_FAILURES, `${checked} checked across both instances, ${refused} refused`)
})

t.test('unknown emails are counted alike, and a right password starts the count again', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const login = (email: string, password: string) => app.inject({ method: 'POST', url: '/login', payload: { email, password } })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await login('nobody@example.com', 'wrong password!')).statusCode)
  t.same(statuses, [401, 401, 401, 429], 'an unknown email locks after 3 like a known one')

  const user = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: user })
  t.equal((await login(user.email, 'wrong password!')).statusCode, 401)
  t.equal((await login(user.email, 'wrong password!')).statusCode, 401)
  t.equal((await login(user.email, user.password)).statusCode, 200, 'the right password within the limit logs in')
  const after = []
  for (let i = 0; i < 4; i++) after.push((await login(user.email, 'wrong password!')).statusCode)
  t.same(after, [401, 401, 401, 429], 'and the count started again from zero')
})

t.test('wrong current_password guesses count toward the same lockout', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '5' })
  const session = await registerAndLogin(app)
  const change = (currentPassword: string) => app.inject({
    method: 'PUT',
    url: `/users/${session.user.id}/password`,
    headers: bearer(session.access_token),
    payload: { current_password: currentPassword, new_password: 'a brand new password' },
  })
  const statuses = await Promise.all(Array.from({ length: 15 }, () => change('not my password')))
  const { checked, refused } = tally(statuses.map((response) => response.statusCode))
  t.equal(checked, 5, `of 15 concurrent wrong guesses ${checked} were checked`)
  t.equal(refused, 10, `and ${refused} refused with 429`)
  t.equal((await change(session.password)).statusCode, 429, 'the right one too, while locked')
  const login = await app.inject({ method: 'POST', url: '/login', payload: { email: session.user.email, password: session.password } })
  t.equal(login.statusCode, 429, 'and a login for the account is locked as well')
})
