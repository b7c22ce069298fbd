import t from 'tap'
import { bearer, build, login, newUser, registerAndLogin } from '../helper.js'
import { startMailServer, tokenOfLink } from '../mail-server.js'

// API.md §10, email verification, against a real SMTP server on loopback.

const APP_URL = 'http://127.0.0.1:5173'

t.test('email verification over SMTP', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL })
  const verificationFor = async (email: string, nth = 1) => {
    const mail = await smtp.waitForMail(() => smtp.mails.filter((m) => m.to.includes(email) && /confirm/i.test(m.subject)).length >= nth)
    const mails = smtp.mails.filter((m) => m.to.includes(email) && /confirm/i.test(m.subject))
    const last = mails[nth - 1] ?? mail
    const token = tokenOfLink(last.text, APP_URL, '/verify-email')
    if (!token) throw new Error(`no verification link in: ${last.text}`)
    return { mail: last, token }
  }
  const verify = (token: string) => app.inject({ method: 'POST', url: '/email/verify', payload: { token } })
  const me = async (token: string) => (await app.inject({ method: 'GET', url: '/me', headers: bearer(token) })).json()

  t.test('registering mails a link; following it sets email_verified_at, once', async (t) => {
    const session = await registerAndLogin(app)
    t.equal(session.user.email_verified_at, null, 'a new account is unverified')
    const { mail, token } = await verificationFor(session.user.email)
    t.same(mail.to, [session.user.email])
    t.equal(mail.subject, 'Confirm your email address for boardkit')
    t.ok(mail.html.includes(`${APP_URL}/verify-email#token=${token}`), 'the HTML body has the link')

    const verified = await verify(token)
    t.equal(verified.statusCode, 204)
    const after = await me(session.access_token)
    t.ok(after.email_verified_at, 'email_verified_at is set')
    t.ok(Math.abs(Date.parse(after.email_verified_at) - Date.now()) < 60_000, 'to about now')
    const again = await verify(token)
    t.equal(again.statusCode, 400, 'the token cannot be used twice')
    t.equal(again.json().code, 'invalid_verification_token')
  })

  t.test('POST /email/verify/send mails a new link that voids the older one', async (t) => {
    const session = await registerAndLogin(app)
    const first = await verificationFor(session.user.email)
    const sent = await app.inject({ method: 'POST', url: '/email/verify/send', headers: bearer(session.access_token) })
    t.equal(sent.statusCode, 202)
    t.same(sent.json(), { status: 'accepted' })
    const second = await verificationFor(session.user.email, 2)
    t.not(second.token, first.token)
    t.equal((await verify(first.token)).json().code, 'invalid_verification_token', 'the older link is void')
    t.equal((await verify(second.token)).statusCode, 204, 'the newer one works')
    t.ok((await me(session.access_token)).email_verified_at)

    await app.inject({ method: 'POST', url: '/email/verify/send', headers: bearer(session.access_token) })
    await app.outbox.idle()
    t.equal(smtp.mails.filter((m) => m.to.includes(session.user.email) && /confirm/i.test(m.subject)).length, 2,
      'no mail once the email is verified')
  })

  t.test('changing the email clears email_verified_at and mails the new address', async (t) => {
    const session = await registerAndLogin(app)
    const { token } = await verificationFor(session.user.email)
    await verify(token)
    const newEmail = newUser().email
    const changed = await app.inject({ method: 'PATCH', url: `/users/${session.user.id}`, headers: bearer(session.access_token), payload: { email: newEmail } })
    t.equal(changed.statusCode, 200)
    t.equal(changed.json().email_verified_at, null, 'the new address is unverified')
    const renamed = await app.inject({ method: 'PATCH', url: `/users/${session.user.id}`, headers: bearer(session.access_token), payload: { name: 'Only A Name' } })
    t.equal(renamed.json().email_verified_at, null, 'a name change leaves it as it is')
    const mailed = await verificationFor(newEmail)
    t.same(mailed.mail.to, [newEmail], 'the mail goes to the new address')
    t.equal((await verify(mailed.token)).statusCode, 204)
    t.ok((await me(session.access_token)).email_verified_at, 'verified again')
  })

  t.test('a link for an old address cannot verify the new one', async (t) => {
    const session = await registerAndLogin(app)
    const { token } = await verificationFor(session.user.email)
    await app.inject({ method: 'PATCH', url: `/users/${session.user.id}`, headers: bearer(session.access_token), payload: { email: newUser().email } })
    const answer = await verify(token)
    t.equal(answer.statusCode, 400)
    t.equal(answer.json().code, 'invalid_verification_token')
    t.equal((await me(session.access_token)).email_verified_at, null)
  })

  t.test('bad, expired and reset tokens are 400 invalid_verification_token', async (t) => {
    const session = await registerAndLogin(app)
    const { token } = await verificationFor(session.user.email)
    await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: session.user.email } })
    const resetMail = await smtp.waitForMail((m) => m.to.includes(session.user.email) && /reset/i.test(m.subject))
    const resetToken = tokenOfLink(resetMail.text, APP_URL, '/reset-password')!
    for (const [what, candidate] of [['garbage', 'not-a-token'], ['a reset token', resetToken]] as const) {
      const answer = await verify(candidate)
      t.equal(answer.statusCode, 400, `${what}: 400`)
      t.equal(answer.json().code, 'invalid_verification_token', `${what}: invalid_verification_token`)
    }
    await app.pool.query('UPDATE one_time_tokens SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE user_id = ? AND purpose = \'email_verification\'', [session.user.id])
    t.equal((await verify(token)).json().code, 'invalid_verification_token', 'expired')
    t.equal((await me(session.access_token)).email_verified_at, null, 'still unverified')
  })

  t.test('POST /email/verify/send needs an access token', async (t) => {
    const answer = await app.inject({ method: 'POST', url: '/email/verify/send' })
    t.equal(answer.statusCode, 401)
    t.equal(answer.json().code, 'authorization_required')
  })
})

t.test('REQUIRE_EMAIL_VERIFICATION=true: login is 403 email_not_verified until the email is verified', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL, REQUIRE_EMAIL_VERIFICATION: 'true' })
  const body = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/register', payload: body })).statusCode, 201)

  const refused = await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: body.password } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'email_not_verified')
  const wrong = await app.inject({ method: 'POST', url: '/login', payload: { email: body.email, password: 'not the password' } })
  t.equal(wrong.statusCode, 401, 'a wrong password is still 401: the 403 needs the right one')
  t.equal(wrong.json().code, 'invalid_credentials')

  const mail = await smtp.waitForMail((m) => m.to.includes(body.email) && /confirm/i.test(m.subject))
  t.equal((await app.inject({ method: 'POST', url: '/email/verify', payload: { token: tokenOfLink(mail.text, APP_URL, '/verify-email') } })).statusCode, 204)
  const session = await login(app, body.email, body.password)
  t.ok(session.user.email_verified_at, 'after verifying, login works')
})
