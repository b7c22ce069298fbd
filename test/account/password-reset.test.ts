import t from 'tap'
import { assertUnauthorized, bearer, build, login, newUser, registerAndLogin } from '../helper.js'
import { startMailServer, tokenOfLink, type ReceivedMail } from '../mail-server.js'

// API.md §10, password reset, against a real SMTP server on loopback.

const APP_URL = 'https://app.example.test/account'

t.test('password reset over SMTP', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL, MAIL_FROM: 'boardkit <no-reply@boardkit.test>' })
  const forgot = (email: string) => app.inject({ method: 'POST', url: '/password/forgot', payload: { email } })
  const reset = (token: string, password: string) => app.inject({ method: 'POST', url: '/password/reset', payload: { token, new_password: password } })
  const resetMailFor = (email: string) => smtp.waitForMail((mail) => mail.to.includes(email) && /reset/i.test(mail.subject))
  const resetMailsFor = (email: string) => smtp.mails.filter((mail) => mail.to.includes(email) && /reset/i.test(mail.subject))
  const tokenOf = (mail: ReceivedMail) => {
    const token = tokenOfLink(mail.text, APP_URL, '/reset-password')
    if (!token) throw new Error(`no reset link in: ${mail.text}`)
    return token
  }

  t.test('a known email gets a mail with a working single-use link; the reset ends every session', async (t) => {
    const me = await registerAndLogin(app)
    const other = await login(app, me.user.email, me.password)

    const answer = await forgot(me.user.email.toUpperCase())
    t.equal(answer.statusCode, 202)
    t.same(answer.json(), { status: 'accepted' })

    const mail = await resetMailFor(me.user.email)
    t.same(mail.to, [me.user.email], 'sent to the account\'s address only')
    t.equal(mail.from, 'no-reply@boardkit.test', 'from MAIL_FROM')
    t.equal(mail.subject, 'Reset your boardkit password')
    const token = tokenOf(mail)
    t.ok(token.length >= 43, 'the token carries at least 256 bits (base64url)')
    t.ok(mail.html.includes(`${APP_URL}/reset-password#token=${token}`), 'the HTML body has the same link')
    t.match(mail.text, /30 minutes/, 'the mail says how long the link works')

    t.equal((await reset(token, 'a brand new password')).statusCode, 204, 'the link\'s token resets the password')

    for (const [what, token] of [['access token', me.access_token], ['other session\'s access token', other.access_token]] as const) {
      assertUnauthorized(t, await app.inject({ method: 'GET', url: '/me', headers: bearer(token) }), 'token_revoked', `the old ${what}`)
    }
    const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(me.refresh_token) })
    t.equal(refreshed.statusCode, 401, 'the old refresh token is dead')

    const oldLogin = await app.inject({ method: 'POST', url: '/login', payload: { email: me.user.email, password: me.password } })
    t.equal(oldLogin.statusCode, 401, 'the old password no longer works')
    const fresh = await login(app, me.user.email, 'a brand new password')
    const meNow = await app.inject({ method: 'GET', url: '/me', headers: bearer(fresh.access_token) })
    t.equal(meNow.statusCode, 200, 'the new password works, and so does its session')
    t.ok(meNow.json().email_verified_at, 'a reset through the mailbox verifies the email')

    const again = await reset(token, 'yet another password')
    t.equal(again.statusCode, 400, 'the token cannot be used twice')
    t.equal(again.json().code, 'invalid_reset_token')
    await login(app, me.user.email, 'a brand new password')
  })

  t.test('an unknown email gets the same answer and no mail', async (t) => {
    const known = await registerAndLogin(app)
    const unknown = `nobody-${Date.now()}@example.com`
    const [a, b] = [await forgot(unknown), await forgot(known.user.email)]
    t.equal(a.statusCode, b.statusCode, 'same status')
    t.equal(a.body, b.body, 'same body')
    t.same(Object.keys(a.headers).filter((h) => h !== 'x-request-id' && h !== 'date').sort(),
      Object.keys(b.headers).filter((h) => h !== 'x-request-id' && h !== 'date').sort(), 'same headers')
    await resetMailFor(known.user.email)
    await app.outbox.idle()
    t.equal(smtp.mails.filter((mail) => mail.to.includes(unknown)).length, 0, 'nothing was sent to the unknown address')
  })

  t.test('a newer link voids the older ones', async (t) => {
    const me = await registerAndLogin(app)
    await forgot(me.user.email)
    const first = tokenOf(await resetMailFor(me.user.email))
    await forgot(me.user.email)
    await smtp.waitForMail(() => resetMailsFor(me.user.email).length === 2)
    const second = tokenOf(resetMailsFor(me.user.email)[1]!)
    t.not(first, second)
    const old = await reset(first, 'from the first link')
    t.equal(old.statusCode, 400, 'the older link is void')
    t.equal(old.json().code, 'invalid_reset_token')
    t.equal((await reset(second, 'from the second link')).statusCode, 204, 'the newest link works')
  })

  t.test('an expired link is 400 invalid_reset_token', async (t) => {
    const me = await registerAndLogin(app)
    await forgot(me.user.email)
    const token = tokenOf(await resetMailFor(me.user.email))
    await app.pool.query('UPDATE one_time_tokens SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE user_id = ?', [me.user.id])
    const expired = await reset(token, 'too late for this')
    t.equal(expired.statusCode, 400)
    t.equal(expired.json().code, 'invalid_reset_token')
    await login(app, me.user.email, me.password)
  })

  t.test('unknown, mangled and wrong-purpose tokens are 400 invalid_reset_token', async (t) => {
    const me = await registerAndLogin(app)
    await forgot(me.user.email)
    const token = tokenOf(await resetMailFor(me.user.email))
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')
    const selectorKept = token.slice(0, 22) + 'A'.repeat(token.length - 22)
    const verification = tokenOfLink((await smtp.waitForMail((mail) => mail.to.includes(me.user.email) && /confirm/i.test(mail.subject))).text, APP_URL, '/verify-email')
    for (const [what, candidate] of [['a random token', 'A'.repeat(64)], ['one changed character', flipped], ['the right selector with a wrong verifier', selectorKept],
      ['a verification token', verification!], ['not base64url', '!'.repeat(64)], ['too short', 'abc']] as const) {
      const answer = await reset(candidate, 'a brand new password')
      t.equal(answer.statusCode, 400, `${what}: 400`)
      t.equal(answer.json().code, 'invalid_reset_token', `${what}: invalid_reset_token`)
    }
    t.equal((await reset(token, 'a brand new password')).statusCode, 204, 'the real token still works after the failed tries')
  })

  t.test('a link mailed to an old address dies when the email changes', async (t) => {
    const me = await registerAndLogin(app)
    await forgot(me.user.email)
    const token = tokenOf(await resetMailFor(me.user.email))
    const changed = await app.inject({ method: 'PATCH', url: `/users/${me.user.id}`, headers: bearer(me.access_token), payload: { email: newUser().email } })
    t.equal(changed.statusCode, 200)
    const answer = await reset(token, 'a brand new password')
    t.equal(answer.statusCode, 400)
    t.equal(answer.json().code, 'invalid_reset_token')
  })

  t.test('at most 3 mails per address per hour; every request is still 202', async (t) => {
    const me = await registerAndLogin(app)
    for (let i = 0; i < 5; i++) t.equal((await forgot(me.user.email)).statusCode, 202, `request ${i + 1}: 202`)
    await app.outbox.idle()
    await smtp.waitForMail(() => resetMailsFor(me.user.email).length >= 3)
    t.equal(resetMailsFor(me.user.email).length, 3, 'three mails, not five')
  })

  t.test('a weak new password or an empty token is a 400 validation_error', async (t) => {
    const short = await reset('A'.repeat(64), 'short')
    t.equal(short.statusCode, 400)
    t.equal(short.json().code, 'validation_error')
    const empty = await reset('', 'long enough password')
    t.equal(empty.json().code, 'validation_error')
  })
})

t.test('/password/forgot and /password/reset share the per-IP limit of /login', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH: '2' })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: 'x@example.com' } })).statusCode)
  t.same(statuses, [202, 202, 429])
  const reset = await app.inject({ method: 'POST', url: '/password/reset', payload: { token: 'A'.repeat(64), new_password: 'long enough password' } })
  t.equal(reset.statusCode, 400, 'each route counts on its own')
})
