// Browser flow: the demo page signs in, works and signs out, and follows sessions ended elsewhere
// (a global logout, another browser's Sessions panel).
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import t from 'tap'
import { api, bearerOf, noProblems, openPage, PASSWORD, registerUser, responsesTo, screenshot, startServer, type Watch } from './fixture.js'

const url = await startServer(t)

t.test('demo page: log in, create a board, log out', async (t) => {
  const email = await registerUser(url, 'Demo User')
  const watch = await openPage(t, url)
  const { page } = watch
  t.equal((await page.goto(`${url}/demo`))?.status(), 200, 'GET /demo: 200')
  await page.locator('#login-form').waitFor()
  t.ok(await page.locator('#boards-section').isHidden(), 'signed out: the boards are hidden')
  // Without <link rel="icon">, the browser asks for /favicon.ico; a 404 there is a console
  // error on every visit (checked in the console too, but when it is logged depends on timing).
  const icons = await page.locator('link[rel~="icon"]').count()
  const favicon = icons > 0 ? null : (await fetch(`${url}/favicon.ico`)).status
  t.ok(icons > 0 || (favicon !== null && favicon < 400), 'the page names an icon, or /favicon.ico exists', { icons, favicon })
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  await screenshot(page, '04-demo-login-form')

  const [login] = await Promise.all([
    page.waitForResponse(`${url}/login?refresh=cookie`),
    page.click('#login-form button[type=submit]'),
  ])
  t.equal(login.status(), 200, 'POST /login from the page: 200')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Demo User (${email}, user)`, 'the page says who is signed in')
  t.ok(await page.locator('#login-section').isHidden(), 'the login form is hidden')
  await screenshot(page, '05-demo-signed-in')

  await page.fill('#board-form input[name=title]', 'Hello from the browser')
  await page.fill('#board-form textarea[name=content]', 'Typed into the demo page by Chromium.')
  const [created] = await Promise.all([
    page.waitForResponse((response) => response.url() === `${url}/boards` && response.request().method() === 'POST'),
    page.click('#board-form button[type=submit]'),
  ])
  t.equal(created.status(), 201, 'POST /boards from the page: 201')
  const board = await created.json() as { id: number }
  const item = page.locator(`#boards li[data-id="${board.id}"]`)
  await item.waitFor()
  t.equal(await item.locator('strong').innerText(), 'Hello from the browser', 'the new board is in the list')
  t.match(await item.innerText(), 'Typed into the demo page by Chromium.', 'with its content')
  t.match(await item.locator('.meta').innerText(), `#${board.id} by Demo User`, 'and its author')
  t.equal(await page.locator('#message').innerText(), `Created board #${board.id}`, 'the page says so')
  t.equal(await page.locator('#board-form input[name=title]').inputValue(), '', 'the form is cleared')
  await screenshot(page, '06-demo-board-created')

  // The list, as the API has it, has the board first.
  const accessToken = await bearerOf(created)
  t.ok(accessToken, 'the page sent a Bearer token')
  const listed = await api(url, 'GET', '/boards?limit=1', undefined, accessToken)
  t.match(listed.data, { items: [{ id: board.id, title: 'Hello from the browser' }] }, 'GET /boards has it first')

  const [logout] = await Promise.all([
    page.waitForResponse(`${url}/logout`),
    page.click('#logout'),
  ])
  t.equal(logout.status(), 204, 'POST /logout from the page: 204')
  t.equal(await bearerOf(logout), accessToken, 'the page logged out with the token it used')
  await page.locator('#login-form').waitFor()
  t.ok(await page.locator('#boards-section').isHidden(), 'signed out: the boards are hidden again')
  t.ok(await page.locator('#logout').isHidden(), 'and the logout button')
  t.match(await page.locator('#message').innerText(), /Logged out/, 'the page says it logged out')
  // The password typed at login must not stay in the (hidden) form for the whole session.
  t.equal(await page.locator('#login-form input[name=password]').inputValue(), '', 'the password is not left in the login form')
  await screenshot(page, '07-demo-logged-out')

  const after = await api(url, 'GET', '/me', undefined, accessToken)
  t.equal(after.status, 401, 'the token the page used: 401 after logout')
  t.equal(after.data?.code, 'token_revoked', 'token_revoked')
  noProblems(t, watch)
})

t.test('demo page: a session revoked elsewhere signs the page out', async (t) => {
  const email = await registerUser(url, 'Revoked User')
  const watch = await openPage(t, url)
  const { page } = watch
  await page.goto(`${url}/demo`)
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  await page.click('#login-form button[type=submit]')
  await page.locator('#boards-section').waitFor()

  // Another client of the same user logs out everywhere: the page's session dies too.
  const other = await api(url, 'POST', '/login', { email, password: PASSWORD })
  const everywhere = await api(url, 'POST', '/logout?scope=global', undefined, other.data!.access_token as string)
  t.equal(everywhere.status, 204, 'POST /logout?scope=global (fetch): 204')

  await page.fill('#board-form input[name=title]', 'Never created')
  const [refused] = await Promise.all([
    page.waitForResponse((response) => response.url() === `${url}/boards` && response.request().method() === 'POST'),
    page.click('#board-form button[type=submit]'),
  ])
  t.equal(refused.status(), 401, 'POST /boards from the page: 401')
  const error = await refused.json() as { code: string, message: string }
  t.equal(error.code, 'token_revoked', 'token_revoked')
  await page.locator('#login-form').waitFor()
  t.ok(await page.locator('#boards-section').isHidden(), 'the page is signed out')
  t.equal(await page.locator('#message').innerText(), error.message, "the page shows the API's message")
  t.same(responsesTo(watch, url, 'POST', '/refresh'), [], 'no refresh attempted for a revoked token')
  await screenshot(page, '10-demo-revoked-elsewhere')

  // The 401 itself is logged by the browser and expected; an uncaught error is not.
  noProblems(t, watch, [(problem) => problem.kind === 'console' && problem.url === `${url}/boards` &&
    problem.text.includes('status of 401')])
})

t.test('demo page: a session ended from another browser\'s Sessions panel signs that browser out', async (t) => {
  const email = await registerUser(url, 'Two Browsers')
  const signIn = async (watch: Watch) => {
    await watch.page.goto(`${url}/demo`)
    await watch.page.fill('#login-form input[name=email]', email)
    await watch.page.fill('#login-form input[name=password]', PASSWORD)
    await watch.page.click('#login-form button[type=submit]')
    await watch.page.locator('#boards-section').waitFor()
  }
  const first = await openPage(t, url)
  const second = await openPage(t, url)
  await signIn(first)
  await signIn(second)

  await first.page.click('#reload-sessions')
  await first.page.locator('#sessions li:not(.current)').waitFor()
  t.equal(await first.page.locator('#sessions li').count(), 2, 'the first browser lists both sessions')
  await screenshot(first.page, '12-demo-sessions-two')
  const [ended] = await Promise.all([
    first.page.waitForResponse((response) => response.request().method() === 'DELETE' && response.url().startsWith(`${url}/sessions/`)),
    first.page.click('#sessions li:not(.current) button.end'),
  ])
  t.equal(ended.status(), 204, 'DELETE /sessions/:id from the panel: 204')
  await first.page.waitForFunction(() => document.querySelectorAll('#sessions li').length === 1)
  t.equal(await first.page.locator('#sessions li.current').count(), 1, 'only this session is left')

  await second.page.fill('#board-form input[name=title]', 'Never created')
  const [refused] = await Promise.all([
    second.page.waitForResponse((response) => response.url() === `${url}/boards` && response.request().method() === 'POST'),
    second.page.click('#board-form button[type=submit]'),
  ])
  t.equal(refused.status(), 401, 'the second browser\'s next call: 401')
  t.equal((await refused.json() as { code: string }).code, 'token_revoked', 'token_revoked')
  await second.page.locator('#login-form').waitFor()
  t.ok(await second.page.locator('#boards-section').isHidden(), 'the second browser shows the login form')
  await screenshot(second.page, '13-demo-ended-elsewhere')
  noProblems(t, first)
  noProblems(t, second, [(problem) => problem.kind === 'console' && problem.url === `${url}/boards` && problem.text.includes('status of 401')])

  // A cross-site page (localhost is another site than 127.0.0.1) in the browser that has the
  // cookie tries to spend it: with X-Requested-With (needs a CORS preflight, which is refused)
  // and without (a "simple" request: SameSite=Strict keeps the cookie off it).
  const crossSite = url.replace('127.0.0.1', 'localhost')
  const attacker = await first.page.context().newPage()
  const answers: number[] = []
  attacker.on('response', (response) => { if (response.url() === `${url}/refresh`) answers.push(response.status()) })
  await attacker.goto(`${crossSite}/health`)
  const outcomes = await attacker.evaluate(async (target) => Promise.all([
    { 'x-requested-with': 'evil' } as Record<string, string>,
    {},
  ].map((headers) => fetch(`${target}/refresh`, { method: 'POST', credentials: 'include', headers })
    .then((response) => `status ${response.status}`, (error: Error) => `refused: ${error.name}`))), url)
  t.same(outcomes, ['refused: TypeError', 'refused: TypeError'], 'the cross-site page gets no answer to either fetch')
  t.notOk(answers.includes(200), 'and the API refreshed nothing for it', { answers })
  await attacker.close()
  const [still] = await Promise.all([first.page.waitForResponse(`${url}/refresh`), first.page.reload()])
  t.equal(still.status(), 200, 'the first browser\'s cookie is unspent: its reload refreshes')
})
