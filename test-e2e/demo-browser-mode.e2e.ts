// Browser flow: the demo page in browser mode. A reload keeps the session though no script can
// read the refresh token, and an expired access token is refreshed.
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import t from 'tap'
import { bearerOf, noProblems, openPage, PASSWORD, registerUser, responsesTo, screenshot, startServer } from './fixture.js'

const url = await startServer(t)

t.test('demo page, browser mode: a reload keeps the session; no script sees the refresh token', async (t) => {
  const email = await registerUser(url, 'Cookie User')
  const watch = await openPage(t, url)
  const { page } = watch
  await page.goto(`${url}/demo`)
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  const [login] = await Promise.all([
    page.waitForResponse((response) => response.url().startsWith(`${url}/login`)),
    page.click('#login-form button[type=submit]'),
  ])
  t.equal(login.url(), `${url}/login?refresh=cookie`, 'the page logs in in browser mode')
  t.notOk('refresh_token' in (await login.json() as object), 'no refresh_token in the body the page gets')
  await page.locator('#boards-section').waitFor()
  t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie shows nothing')
  t.same(await page.evaluate(() => Object.keys(localStorage).filter((key) => localStorage.getItem(key)!.includes('.'))), [], 'no token in localStorage')
  const [cookie] = (await page.context().cookies(url)).filter((c) => c.name === '__Host-refresh')
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/' }, 'the browser keeps an HttpOnly, Secure, SameSite=Strict cookie')
  await page.locator('#sessions li.current').waitFor()
  t.equal(await page.locator('#sessions li').count(), 1, 'the Sessions panel lists this session')
  t.match(await page.locator('#sessions li.current strong').innerText(), /^Chrome( Headless)? \d+ on Linux$/, 'named as people name their device')
  await page.locator('#activity li[data-type="login.succeeded"]').first().waitFor()
  t.match(await page.locator('#activity li').first().innerText(), /login\.succeeded[\s\S]*Chrome( Headless)? \d+ on Linux/, 'the Security activity panel shows the sign-in, newest first, with the device')

  const [refreshed] = await Promise.all([
    page.waitForResponse(`${url}/refresh`),
    page.reload(),
  ])
  t.equal(refreshed.status(), 200, 'the reload refreshes from the cookie: 200')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Cookie User (${email}, user)`, 'still signed in after a reload')
  const [rotated] = (await page.context().cookies(url)).filter((c) => c.name === '__Host-refresh')
  t.not(rotated?.value, cookie?.value, 'the refresh rotated the cookie')
  await screenshot(page, '11-demo-reloaded-still-signed-in')
  noProblems(t, watch)
})

t.test('demo page: an expired access token is refreshed', async (t) => {
  const shortUrl = await startServer(t, { ACCESS_TOKEN_TTL: '2s' })
  const email = await registerUser(shortUrl, 'Expiry User')
  const watch = await openPage(t, shortUrl)
  const { page } = watch
  await page.goto(`${shortUrl}/demo`)
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  await page.click('#login-form button[type=submit]')
  await page.locator('#boards-section').waitFor()
  await screenshot(page, '08-demo-expiry-signed-in')

  await page.waitForTimeout(3_000)
  await page.fill('#board-form input[name=title]', 'Hello after expiry')
  await Promise.all([
    page.waitForResponse((response) => response.url() === `${shortUrl}/boards` && response.request().method() === 'POST' && response.status() !== 401),
    page.click('#board-form button[type=submit]'),
  ])
  await page.locator('#boards li strong', { hasText: 'Hello after expiry' }).waitFor()
  t.pass('the board was created after the access token expired')
  t.ok(await page.locator('#login-section').isHidden(), 'still signed in')
  await screenshot(page, '09-demo-expiry-board-created')

  const posts = responsesTo(watch, shortUrl, 'POST', '/boards')
  t.same(posts.map((response) => response.status()), [401, 201], 'POST /boards: 401, then 201')
  t.match(await posts[0]!.json(), { code: 'token_expired' }, 'the first: token_expired')
  const refreshes = responsesTo(watch, shortUrl, 'POST', '/refresh')
  t.same(refreshes.map((response) => response.status()), [200], 'one POST /refresh, 200')
  const [expired, refreshed] = [await bearerOf(posts[0]!), await bearerOf(posts[1]!)]
  t.not(refreshed, expired, 'the retry sent another access token')
  t.match(await refreshes[0]!.json(), { access_token: refreshed }, 'the one POST /refresh returned')

  // The browser logs the handled 401 as a failed resource load; that one is expected.
  noProblems(t, watch, [(problem) => problem.kind === 'console' && problem.url === `${shortUrl}/boards` &&
    problem.text.includes('status of 401')])
})
