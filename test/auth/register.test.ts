import t from 'tap'
import { build, newUser } from '../helper.js'

t.test('register', async (t) => {
  const app = await build(t)

  t.test('creates a user: 201, Location, the user object without any hash', async (t) => {
    const body = newUser({ email: '  Grace.Hopper@Example.COM ', name: '  Grace Hopper ' })
    const response = await app.inject({ method: 'POST', url: '/register', payload: body })
    t.equal(response.statusCode, 201)
    const user = response.json()
    t.same(Object.keys(user).sort(), ['created_at', 'email', 'email_verified_at', 'id', 'name', 'role', 'updated_at'])
    t.equal(user.email, 'grace.hopper@example.com', 'email is trimmed and stored lower-case')
    t.equal(user.name, 'Grace Hopper', 'name is trimmed')
    t.equal(user.role, 'user')
    t.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.equal(response.headers.location, `/users/${user.id}`)
    t.notMatch(response.body, /argon2|password/i)
  })

  t.test('an email taken in another case is 409 email_taken', async (t) => {
    const body = newUser()
    t.equal((await app.inject({ method: 'POST', url: '/register', payload: body })).statusCode, 201)
    const again = await app.inject({ method: 'POST', url: '/register', payload: { ...body, email: body.email.toUpperCase() } })
    t.equal(again.statusCode, 409)
    t.same(again.json(), { statusCode: 409, error: 'Conflict', code: 'email_taken', message: 'An account with this email already exists' })
  })

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    ['email without @', { email: 'not-an-email' }, '/email'],
    ['email longer than 254', { email: `${'a'.repeat(250)}@example.com` }, '/email'],
    ['email missing', { email: undefined }, '/email'],
    ['email as a number', { email: 42 }, '/email'],
    ['empty name', { name: '' }, '/name'],
    ['blank name', { name: '    ' }, '/name'],
    ['name of 81 chars', { name: 'n'.repeat(81) }, '/name'],
    ['password of 7 chars', { password: 'seven77' }, '/password'],
    ['password of 129 chars', { password: 'p'.repeat(129) }, '/password'],
    ['password as a number', { password: 12345678 }, '/password'],
    ['unknown property', { role: 'admin' }, '/role'],
  ]
  for (const [title, change, path] of invalid) {
    t.test(`${title} is 400 validation_error at ${path}`, async (t) => {
      const response = await app.inject({ method: 'POST', url: '/register', payload: { ...newUser(), ...change } })
      t.equal(response.statusCode, 400)
      const body = response.json()
      t.equal(body.code, 'validation_error')
      t.equal(body.error, 'Bad Request')
      t.equal(body.details[0].path, path)
      t.type(body.details[0].message, 'string')
    })
  }

  t.test('boundary lengths are accepted', async (t) => {
    const response = await app.inject({ method: 'POST', url: '/register', payload: newUser({ name: 'n'.repeat(80), password: 'p'.repeat(128) }) })
    t.equal(response.statusCode, 201)
    const short = await app.inject({ method: 'POST', url: '/register', payload: newUser({ name: 'n', password: 'p'.repeat(8) }) })
    t.equal(short.statusCode, 201)
  })
})
