// Browser flow: the demo page turns on a second factor (TOTP, API.md §13) from its QR code, shows
// the recovery codes once, and logs back in with a code and with a recovery code. The codes are
// computed here with otplib, as an authenticator app would from the secret the page shows.
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import { generateSync } from 'otplib'
import t from 'tap'
import { awayFromStepEdge } from '../test/helper.js'
import { api, bearerOf, messageShowing, noProblems, openPage, PASSWORD, registerUser, screenshot, startServer } from './fixture.js'

const url = await startServer(t)

/** The code an authenticator app shows for `secret`, `offset` steps of 30 s from now. */
const codeOf = (secret: string, offset = 0) => generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 })

const decodeJwt = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

t.test('demo page: turn on TOTP from the QR code, then log in with a code and with a recovery code', async (t) => {
  const email = await registerUser(url, 'Careful User')
  const watch = await openPage(t, url)
  const { page } = watch
  await page.goto(`${url}/demo`)
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  await page.click('#login-form button[type=submit]')
  await page.locator('#security-section').waitFor()
  // Written once GET /me answers, a moment after the section shows.
  await page.locator('#mfa-status', { hasText: /^Off/ }).waitFor()
  t.match(await page.locator('#mfa-status').innerText(), /^Off/, 'the page says the second factor is off')

  // Enrol: the QR code is an image made by the API, allowed by the CSP (img-src data:).
  const [setup] = await Promise.all([
    page.waitForResponse(`${url}/mfa/totp/setup`),
    page.click('#totp-setup'),
  ])
  t.equal(setup.status(), 200, 'POST /mfa/totp/setup from the page: 200')
  const qr = page.locator('#totp-qr')
  await qr.waitFor()
  t.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/, 'the QR code is an SVG data: URL')
  t.ok(await qr.evaluate((image: HTMLImageElement) => image.complete && image.naturalWidth > 0), 'and the browser renders it')
  const secret = await page.locator('#totp-secret').innerText()
  t.match(secret, /^[A-Z2-7]{32}$/, 'the key is shown for typing by hand')
  t.equal(secret, (await setup.json() as { secret: string }).secret, 'the key of the QR code')
  await screenshot(page, '19-demo-totp-qr')

  await awayFromStepEdge()
  await page.fill('#totp-enable-form input[name=code]', codeOf(secret))
  const [enabled] = await Promise.all([
    page.waitForResponse(`${url}/mfa/totp/enable`),
    page.click('#totp-enable-form button[type=submit]'),
  ])
  t.equal(enabled.status(), 200, 'POST /mfa/totp/enable with the computed code: 200')
  await page.locator('#recovery-codes-panel').waitFor()
  const recoveryCodes = await page.locator('#recovery-codes li').allInnerTexts()
  t.equal(recoveryCodes.length, 10, 'the 10 recovery codes are shown')
  t.same(recoveryCodes, (await enabled.json() as { recovery_codes: string[] }).recovery_codes, 'as the API gave them')
  t.match(await messageShowing(page, /is on/), /Two-factor authentication is on/, 'the page says it is on')
  await page.locator('#mfa-status', { hasText: /^On/ }).waitFor()
  t.match(await page.locator('#mfa-status').innerText(), /10 recovery codes left/, 'and how many recovery codes are left')
  t.ok(await page.locator('#totp-enrol').isHidden(), 'the QR code is gone')
  await screenshot(page, '20-demo-recovery-codes')
  await page.click('#recovery-codes-done')
  t.ok(await page.locator('#recovery-codes-panel').isHidden(), 'once saved, the codes are gone')
  t.equal(await page.locator('#recovery-codes li').count(), 0, 'from the page itself, not only hidden')

  const logOut = async () => {
    const [logout] = await Promise.all([page.waitForResponse(`${url}/logout`), page.click('#logout')])
    t.equal(logout.status(), 204, 'log out: 204')
    await page.locator('#login-form').waitFor()
  }
  const logInWithPassword = async () => {
    await page.fill('#login-form input[name=email]', email)
    await page.fill('#login-form input[name=password]', PASSWORD)
    const [login] = await Promise.all([page.waitForResponse(`${url}/login?refresh=cookie`), page.click('#login-form button[type=submit]')])
    t.equal(login.status(), 200, 'the password: 200')
    t.match(await login.json(), { mfa_required: true, methods: ['totp', 'recovery_code'] }, 'a challenge, no tokens')
    await page.locator('#mfa-login-form').waitFor()
    t.ok(await page.locator('#boards-section').isHidden(), 'not signed in yet')
  }

  // Log back in with a code: the next step's, as enabling spent this one.
  await logOut()
  await logInWithPassword()
  await screenshot(page, '21-demo-mfa-code-form')
  await page.fill('#mfa-login-form input[name=code]', codeOf(secret, 1))
  const [withCode, boards] = await Promise.all([
    page.waitForResponse(`${url}/login/mfa?refresh=cookie`),
    page.waitForResponse((response) => response.url().startsWith(`${url}/boards`)),
    page.click('#mfa-login-form button[type=submit]'),
  ])
  t.equal(withCode.status(), 200, 'POST /login/mfa with the code: 200')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Careful User (${email}, user)`, 'signed in')
  const access = await bearerOf(boards)
  t.same(decodeJwt(access!).amr, ['pwd', 'otp'], 'the page\'s token proves both factors')
  t.notOk((await withCode.json() as Record<string, unknown>).refresh_token, 'browser mode: the refresh token is in the cookie, not the body')
  await screenshot(page, '22-demo-signed-in-with-code')

  // And with a recovery code, typed in capitals.
  await logOut()
  await logInWithPassword()
  await page.click('#mfa-use-recovery')
  await page.fill('#mfa-login-form input[name=recovery_code]', recoveryCodes[0]!.toUpperCase())
  const [withRecovery] = await Promise.all([page.waitForResponse(`${url}/login/mfa?refresh=cookie`), page.click('#mfa-login-form button[type=submit]')])
  t.equal(withRecovery.status(), 200, 'POST /login/mfa with a recovery code: 200')
  const sent = withRecovery.request().postDataJSON() as Record<string, unknown>
  t.same(Object.keys(sent).sort(), ['mfa_token', 'recovery_code'], 'the recovery code is sent in place of a code')
  t.equal(sent.recovery_code, recoveryCodes[0]!.toUpperCase())
  await page.locator('#boards-section').waitFor()
  t.match(await messageShowing(page, /recovery code/), /Signed in with a recovery code/, 'the page says a recovery code was used')
  await page.locator('#mfa-status', { hasText: /9 recovery codes left/ }).waitFor()
  t.match(await page.locator('#mfa-status').innerText(), /9 recovery codes left/, 'one fewer left')
  await screenshot(page, '23-demo-signed-in-with-recovery-code')

  const reused = await api(url, 'POST', '/login', { email, password: PASSWORD })
  const again = await api(url, 'POST', '/login/mfa', { mfa_token: reused.data?.mfa_token, recovery_code: recoveryCodes[0] })
  t.equal(again.data?.code, 'invalid_mfa_code', 'that recovery code cannot be used again')
  noProblems(t, watch)
})
