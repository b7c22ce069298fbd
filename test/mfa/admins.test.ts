import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { bearer, build, enrolTotp, registerAndLogin, totpCode } from '../helper.js'

// MFA_REQUIRED_FOR_ADMINS (API.md §13): admin rights only from a login with a second factor. An
// admin without one enrols like anyone, since enrolment needs no admin rights.

t.test('MFA_REQUIRED_FOR_ADMINS: on by default in production only', async (t) => {
  const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(48), JWT_KEY_ENCRYPTION_SECRET: 'k'.repeat(32) }
  t.equal(loadConfig(production).MFA_REQUIRED_FOR_ADMINS, true, 'production: true')
  t.equal(loadConfig({ ...production, MFA_REQUIRED_FOR_ADMINS: 'false' }).MFA_REQUIRED_FOR_ADMINS, false, 'unless turned off')
  t.equal(loadConfig({ NODE_ENV: 'development' }).MFA_REQUIRED_FOR_ADMINS, false, 'development: false')
  t.equal(loadConfig({ NODE_ENV: 'test', MFA_REQUIRED_FOR_ADMINS: 'true' }).MFA_REQUIRED_FOR_ADMINS, true, 'unless turned on')
})

t.test('an admin without a second factor: 403 mfa_required on admin rights; enrolling and a code open them', async (t) => {
  const app = await build(t, { MFA_REQUIRED_FOR_ADMINS: 'true' })
  const admin = await registerAndLogin(app)
  await app.pool.query('UPDATE users SET role = \'admin\' WHERE id = ?', [admin.user.id])
  const user = await registerAndLogin(app)
  const as = (token: string) => bearer(token)

  const adminRoutes = [
    ['GET', '/users'],
    ['GET', '/admin/events'],
    ['GET', `/users/${user.user.id}`],
    ['GET', `/users/${user.user.id}/sessions`],
    ['GET', `/users/${user.user.id}/events`],
  ] as const
  for (const [method, url] of adminRoutes) {
    const response = await app.inject({ method, url, headers: as(admin.access_token) })
    t.equal(response.statusCode, 403, `${method} ${url}: 403`)
    t.equal(response.json().code, 'mfa_required', `${method} ${url}: mfa_required`)
  }
  const created = await app.inject({ method: 'POST', url: '/users', headers: as(admin.access_token), payload: { email: 'new@example.com', name: 'New', password: 'a long password' } })
  t.equal(created.json().code, 'mfa_required', 'POST /users: mfa_required')
  const promote = await app.inject({ method: 'PATCH', url: `/users/${user.user.id}`, headers: as(admin.access_token), payload: { role: 'admin' } })
  t.equal(promote.json().code, 'mfa_required', 'a role change of another user: mfa_required')
  t.equal((await app.inject({ method: 'GET', url: `/users/${admin.user.id}`, headers: as(admin.access_token) })).statusCode, 200,
    'their own account needs no admin rights')
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: as(user.access_token) })).json().code, 'forbidden',
    'a user is still refused as a user: forbidden')

  // Enrolment needs no admin rights: the first admin enrols from a password login.
  const { secret } = await enrolTotp(app, admin)
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: as(admin.access_token) })).json().code, 'mfa_required',
    'this session began with the password alone: still mfa_required')
  const { mfa_token: token } = (await app.inject({ method: 'POST', url: '/login', payload: { email: admin.user.email, password: admin.password } })).json()
  const withCode = (await app.inject({ method: 'POST', url: '/login/mfa', payload: { mfa_token: token, code: totpCode(secret, 1) } })).json()
  for (const [method, url] of adminRoutes) {
    t.equal((await app.inject({ method, url, headers: as(withCode.access_token) })).statusCode, 200, `with a code: ${method} ${url} 200`)
  }
  const refreshedPair = (await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: withCode.refresh_token } })).json()
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: as(refreshedPair.access_token) })).statusCode, 200,
    'and after a refresh: the session keeps its second factor')

  // A key proves no second factor: even made from a session that had one, an admin's key with the
  // scope admin is refused admin rights while this is on (API.md §13, §16).
  const made = await app.inject({ method: 'POST', url: '/api-keys', headers: as(withCode.access_token), payload: { name: 'admin script', scopes: ['admin', 'users:read'] } })
  t.equal(made.statusCode, 201)
  const key = made.json().token as string
  // (A user's sessions and events take no keys at all: 403 insufficient_scope, tested with the keys.)
  for (const [method, url] of adminRoutes.filter(([, url]) => !/^\/users\/\d+\/(sessions|events)$/.test(url))) {
    const response = await app.inject({ method, url, headers: as(key) })
    t.equal(response.statusCode, 403, `a key: ${method} ${url} 403`)
    t.equal(response.json().code, 'mfa_required', `a key: ${method} ${url} mfa_required`)
  }
  t.equal((await app.inject({ method: 'GET', url: `/users/${admin.user.id}`, headers: as(key) })).statusCode, 200,
    'the key still reads its own account: no admin rights needed')
})

t.test('MFA_REQUIRED_FOR_ADMINS=false: an admin needs no second factor', async (t) => {
  const app = await build(t, { MFA_REQUIRED_FOR_ADMINS: 'false' })
  const admin = await registerAndLogin(app)
  await app.pool.query('UPDATE users SET role = \'admin\' WHERE id = ?', [admin.user.id])
  t.equal((await app.inject({ method: 'GET', url: '/users', headers: bearer(admin.access_token) })).statusCode, 200)
})
