// Browser flow: the demo page's account recovery through a real SMTP server on loopback: forgot
// password and the mailed reset link, the verify-email banner and its link.
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startMailServer, tokenOfLink } from '../test/mail-server.js'
import { api, messageShowing, noProblems, openPage, PASSWORD, registerUser, screenshot, startServer } from './fixture.js'

t.test('demo page: forgot password, the mailed link, a new password (real SMTP on loopback)', async (t) => {
  // The mailed links point at the demo (APP_URL …/demo), as a deployment that serves it would.
  const mail = await startMailServer(t)
  const appUrl = (server: string) => `${server}/demo`
  const mailUrl = await startServer(t, (server) => ({ SMTP_URL: mail.url, APP_URL: appUrl(server) }))
  const email = await registerUser(mailUrl, 'Forgetful User')
  const newPassword = 'a brand new passphrase'
  const watch = await openPage(t, mailUrl)
  const { page } = watch

  await page.goto(`${mailUrl}/demo`)
  await page.click('#forgot-open')
  await page.locator('#forgot-form').waitFor()
  t.ok(await page.locator('#login-section').isHidden(), '"Forgot password?" replaces the login form')
  await page.fill('#forgot-form input[name=email]', email)
  await screenshot(page, '14-demo-forgot-password')
  const [forgot] = await Promise.all([
    page.waitForResponse(`${mailUrl}/password/forgot`),
    page.click('#forgot-form button[type=submit]'),
  ])
  t.equal(forgot.status(), 202, 'POST /password/forgot from the page: 202')
  await page.locator('#login-form').waitFor()
  t.match(await messageShowing(page, `If ${email} has an account, a link`), `If ${email} has an account, a link`, 'the page says a link may be on its way')

  // Unknown address: the page says exactly the same (nothing to learn about who has an account).
  await page.click('#forgot-open')
  await page.fill('#forgot-form input[name=email]', `nobody-${randomBytes(3).toString('hex')}@example.com`)
  const [unknown] = await Promise.all([
    page.waitForResponse(`${mailUrl}/password/forgot`),
    page.click('#forgot-form button[type=submit]'),
  ])
  t.equal(unknown.status(), 202, 'an unknown email: 202 too')
  t.match(await messageShowing(page, /^If nobody-.* has an account, a link/), /^If nobody-.* has an account, a link/, 'and the same message')

  const received = await mail.waitForMail((m) => m.to.includes(email) && m.subject === 'Reset your boardkit password')
  const token = tokenOfLink(received.text, appUrl(mailUrl), '/reset-password')
  t.ok(token, `the mail links to ${appUrl(mailUrl)}/reset-password#token=…`)
  const link = `${appUrl(mailUrl)}/reset-password#token=${token}`
  t.match(received.html, link, 'the HTML body has the same link')

  // Open the link in the page, as a click in the mail would.
  t.equal((await page.goto(link))?.status(), 200, 'GET /demo/reset-password: 200 (the demo page)')
  await page.locator('#reset-form').waitFor()
  t.equal(page.url(), `${mailUrl}/demo`, 'the token is taken out of the address bar at once')
  t.ok(await page.locator('#login-section').isHidden(), 'the page shows the new-password form only')
  t.notOk(watch.requests.some((request) => request.includes(token!)), 'no request line carried the token')
  await page.fill('#reset-form input[name=new_password]', newPassword)
  await screenshot(page, '15-demo-reset-password')
  const [reset] = await Promise.all([
    page.waitForResponse(`${mailUrl}/password/reset`),
    page.click('#reset-form button[type=submit]'),
  ])
  t.equal(reset.status(), 204, 'POST /password/reset from the page: 204')
  t.same(reset.request().postDataJSON(), { token, new_password: newPassword }, 'with the token from the fragment in the body')
  await page.locator('#login-form').waitFor()
  t.ok(await page.locator('#reset-section').isHidden(), 'then the login form')
  t.match(await messageShowing(page, /password is changed/), /password is changed/, 'the page says the password is changed')
  t.equal(await page.locator('#reset-form input[name=new_password]').inputValue(), '', 'the new password is not left in the form')

  // The old password fails, the new one works, from the page.
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  const [old] = await Promise.all([
    page.waitForResponse(`${mailUrl}/login?refresh=cookie`),
    page.click('#login-form button[type=submit]'),
  ])
  t.equal(old.status(), 401, 'the old password: 401')
  t.ok(await page.locator('#boards-section').isHidden(), 'still signed out')
  await page.fill('#login-form input[name=password]', newPassword)
  const [fresh] = await Promise.all([
    page.waitForResponse(`${mailUrl}/login?refresh=cookie`),
    page.click('#login-form button[type=submit]'),
  ])
  t.equal(fresh.status(), 200, 'the new password: 200')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Forgetful User (${email}, user)`, 'signed in with the new password')
  await screenshot(page, '16-demo-signed-in-after-reset')

  const again = await api(mailUrl, 'POST', '/password/reset', { token, new_password: 'yet another passphrase' })
  t.equal(again.status, 400, 'the link cannot be used twice: 400')
  t.equal(again.data?.code, 'invalid_reset_token', 'invalid_reset_token')
  // The refused old password is logged by the browser as a failed load; that one is expected.
  noProblems(t, watch, [(problem) => problem.kind === 'console' && problem.url === `${mailUrl}/login?refresh=cookie` &&
    problem.text.includes('status of 401')])
})

t.test('demo page: the verify-email banner, a new link, the link opened (real SMTP on loopback)', async (t) => {
  const mail = await startMailServer(t)
  const appUrl = (server: string) => `${server}/demo`
  const mailUrl = await startServer(t, (server) => ({ SMTP_URL: mail.url, APP_URL: appUrl(server) }))
  const email = await registerUser(mailUrl, 'Unverified User')
  const isVerification = (m: { to: string[], subject: string }) => m.to.includes(email) && m.subject === 'Confirm your email address for boardkit'
  await mail.waitForMail(isVerification)
  const watch = await openPage(t, mailUrl)
  const { page } = watch

  await page.goto(`${mailUrl}/demo`)
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  await page.click('#login-form button[type=submit]')
  await page.locator('#boards-section').waitFor()
  await page.locator('#verify-banner').waitFor()
  t.match(await page.locator('#verify-banner').innerText(), /not verified/, 'an unverified user sees the banner')
  const [sent] = await Promise.all([
    page.waitForResponse(`${mailUrl}/email/verify/send`),
    page.click('#verify-send'),
  ])
  t.equal(sent.status(), 202, 'POST /email/verify/send from the banner: 202')
  t.match(await messageShowing(page, `A new link is on its way to ${email}`), `A new link is on its way to ${email}`, 'the page says so')
  await screenshot(page, '17-demo-verify-banner')

  // The newest link (a newer one voids the older ones).
  await mail.waitForMail(() => mail.mails.filter(isVerification).length >= 2)
  const token = tokenOfLink(mail.mails.filter(isVerification).at(-1)!.text, appUrl(mailUrl), '/verify-email')
  t.ok(token, `the mail links to ${appUrl(mailUrl)}/verify-email#token=…`)
  const [verified] = await Promise.all([
    page.waitForResponse(`${mailUrl}/email/verify`),
    page.goto(`${appUrl(mailUrl)}/verify-email#token=${token}`),
  ])
  t.equal(verified.status(), 204, 'opening the link: POST /email/verify, 204')
  t.same(verified.request().postDataJSON(), { token }, 'with the token from the fragment in the body')
  t.equal(page.url(), `${mailUrl}/demo`, 'the token is taken out of the address bar')
  await page.locator('#boards-section').waitFor()
  await page.waitForFunction(() => (document.querySelector('#verify-banner') as HTMLElement).hidden)
  t.equal(await messageShowing(page, 'Your email address is verified.'), 'Your email address is verified.', 'the page says the email is verified')
  t.ok(await page.locator('#verify-banner').isHidden(), 'the banner is gone, still signed in')
  await screenshot(page, '18-demo-email-verified')
  noProblems(t, watch)
})
