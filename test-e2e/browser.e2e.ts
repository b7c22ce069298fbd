// Browser end-to-end tests: the real server (as `npm start` runs it) and a real Chromium, driven
// by playwright-core. Not part of `npm test`; run them with `npm run test:e2e`.
//
// Needs Chromium at /usr/bin/chromium (Debian's `chromium` package; CI installs it) and MariaDB
// at 127.0.0.1:3306 (root, no password). Only loopback addresses are used. Screenshots of each
// key step go to test-output/ (git-ignored).
//
// The file is named *.e2e.ts, not *.test.ts, so that tap's default file set (what `npm test`
// runs) does not include it: `tap test-e2e` runs every .ts file in this folder.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createConnection } from 'mysql2/promise'
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core'
import t, { type Test } from 'tap'
import { REPO_ROOT, SERVER_ARGS } from '../test/helper.js'
import { startMailServer, tokenOfLink } from '../test/mail-server.js'

const OUTPUT = fileURLToPath(new URL('../test-output/', import.meta.url))
const MYSQL = 'mysql://root@127.0.0.1:3306'
const CHROMIUM = '/usr/bin/chromium'
const PASSWORD = 'correct horse battery'

// ---------------------------------------------------------------------------------------------
// The server

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * Starts `node --import tsx src/server.ts` on a free loopback port and a database of its own,
 * waits for /health, and stops it (SIGTERM) and drops the database when `t` ends. `env` may be
 * a function of the server's URL (for APP_URL, which names the server's own port).
 */
async function startServer (t: Test, extraEnv: Record<string, string> | ((url: string) => Record<string, string>) = {}): Promise<string> {
  const database = `boardkit_t_e2e_${randomBytes(4).toString('hex')}`
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env = typeof extraEnv === 'function' ? extraEnv(url) : extraEnv
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      JWT_SECRET: randomBytes(32).toString('base64url'),
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: `${MYSQL}/${database}`,
      RATE_LIMIT_AUTH: '0',
      LOGIN_MAX_FAILURES: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    const connection = await createConnection(MYSQL)
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
  })

  for (const deadline = Date.now() + 30_000; Date.now() < deadline && child.exitCode === null;) {
    if (await fetch(`${url}/health`).then((response) => response.ok, () => false)) return url
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the server did not start at ${url}:\n${output}`)
}

async function api (url: string, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, data: text ? JSON.parse(text) as Record<string, unknown> : null }
}

/** Registers a new user through the API; returns its email. */
async function registerUser (url: string, name: string): Promise<string> {
  const email = `${name.toLowerCase().replaceAll(' ', '.')}-${randomBytes(3).toString('hex')}@example.com`
  const { status, data } = await api(url, 'POST', '/register', { email, name, password: PASSWORD })
  if (status !== 201) throw new Error(`register: ${status} ${JSON.stringify(data)}`)
  return email
}

// ---------------------------------------------------------------------------------------------
// The browser

let browser: Browser | undefined
async function getBrowser (): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
  return browser
}
t.teardown(async () => { await browser?.close() })

interface Problem { kind: 'console' | 'pageerror' | 'csp' | 'requestfailed', text: string, url: string }

/** What a page did: every request, every response, and everything that went wrong. */
interface Watch {
  page: Page
  origin: string
  requests: string[]
  responses: Response[]
  /** Console errors, uncaught errors, CSP violations and failed requests from our origin. */
  problems: Problem[]
  /** The same from elsewhere (e.g. a browser extension): reported, not failed on. */
  foreignProblems: Problem[]
}

/** A fresh context (no storage) and page for `t`, recording what the page does. */
async function openPage (t: Test, origin: string): Promise<Watch> {
  const context: BrowserContext = await (await getBrowser()).newContext({ viewport: { width: 1280, height: 900 } })
  t.teardown(() => context.close())
  const watch: Watch = { page: undefined as unknown as Page, origin, requests: [], responses: [], problems: [], foreignProblems: [] }
  const ours = (url: string) => url === '' || url === origin || url.startsWith(`${origin}/`)
  const record = (problem: Problem) => (ours(problem.url) ? watch.problems : watch.foreignProblems).push(problem)

  // CSP violations, as the page sees them (the console also reports them, as errors).
  await context.exposeBinding('__e2eCspViolation', ({ frame }, violation: { directive: string, blocked: string, source: string }) =>
    record({ kind: 'csp', text: `${violation.directive} blocked ${violation.blocked} (${violation.source})`, url: frame.url() }))
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      (window as unknown as { __e2eCspViolation: (v: object) => void }).__e2eCspViolation({
        directive: event.effectiveDirective,
        blocked: event.blockedURI,
        source: `${event.sourceFile}:${event.lineNumber}`,
      })
    })
  })

  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  watch.page = page
  page.on('console', (message) => {
    if (message.type() === 'error') record({ kind: 'console', text: message.text(), url: message.location().url || page.url() })
  })
  page.on('pageerror', (error) => record({ kind: 'pageerror', text: `${error.name}: ${error.message}`, url: page.url() }))
  page.on('request', (request) => { watch.requests.push(request.url()) })
  page.on('requestfailed', (request) => record({ kind: 'requestfailed', text: `${request.method()} ${request.url()}: ${request.failure()?.errorText}`, url: request.url() }))
  page.on('response', (response) => { watch.responses.push(response) })
  return watch
}

/** Responses to `method path` (path without the query string), in order. */
function responsesTo (watch: Watch, origin: string, method: string, path: string): Response[] {
  return watch.responses.filter((response) =>
    response.request().method() === method && response.url().split('?')[0] === `${origin}${path}`)
}

async function screenshot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${OUTPUT}${name}.png` })
}

/** No console errors, uncaught errors, CSP violations or failed requests, other than `expected`. */
function noProblems (t: Test, watch: Watch, expected: Array<(problem: Problem) => boolean> = []) {
  const tolerated = watch.problems.filter((problem) => expected.some((isExpected) => isExpected(problem)))
  if (tolerated.length > 0) t.comment('expected, not failed on:', tolerated)
  const unexpected = watch.problems.filter((problem) => !tolerated.includes(problem))
  // A page without <link rel="icon"> makes the browser fetch /favicon.ico; a 404 there is an
  // error in the console of every visit. Its own check, so the cause is plain.
  const isFavicon = (problem: Problem) => problem.url === `${watch.origin}/favicon.ico`
  t.same(unexpected.filter(isFavicon), [], 'no 404 for /favicon.ico in the console (the page names an icon the server has)')
  t.same(unexpected.filter((problem) => !isFavicon(problem)), [], 'no console errors, page errors, CSP violations or failed requests from our pages')
  if (watch.foreignProblems.length > 0) t.comment('from elsewhere (not failed on):', watch.foreignProblems)
}

const bearerOf = async (response: Response) => (await response.request().allHeaders()).authorization?.replace(/^Bearer /, '')

// ---------------------------------------------------------------------------------------------

await mkdir(OUTPUT, { recursive: true })

/**
 * The demo's #message once it shows `expected` (or after 5 s, whatever it shows then): the page
 * writes it after the response's body is read, a moment after waitForResponse() returns.
 */
async function messageShowing (page: Page, expected: string | RegExp): Promise<string> {
  await page.locator('#message', { hasText: expected }).waitFor({ timeout: 5000 }).catch(() => {})
  return page.locator('#message').innerText()
}

t.test('the browser tests', async (t) => {
  const url = await startServer(t)

  t.test('Swagger UI: authorize with a token, try GET /me', async (t) => {
    const email = await registerUser(url, 'Swagger User')
    const login = await api(url, 'POST', '/login', { email, password: PASSWORD })
    t.equal(login.status, 200, 'POST /login (fetch): 200')
    const accessToken = login.data!.access_token as string

    const watch = await openPage(t, url)
    const { page } = watch
    const loaded = await page.goto(`${url}/swagger-ui`)
    t.equal(loaded?.status(), 200, 'GET /swagger-ui: 200')
    await page.locator('.opblock').first().waitFor()
    t.ok(await page.locator('.opblock').count() > 10, 'the operations render')
    t.match(await page.locator('.info .title').innerText(), /boardkit API/, 'the document title shows')
    await screenshot(page, '01-swagger-ui-loaded')

    // Authorize: the bearerAuth scheme takes the access token.
    await page.locator('.auth-wrapper button.authorize').click()
    const dialog = page.locator('.dialog-ux .modal-ux')
    await dialog.waitFor()
    // The dialog has a form per scheme: bearerAuth, and refreshCookie (browser mode's cookie).
    const bearerForm = dialog.locator('form').filter({ hasText: 'bearerAuth' })
    await bearerForm.locator('input#auth-bearer-value').fill(accessToken)
    await bearerForm.locator('button.authorize').click()
    // Authorized: the value is masked and the button turns into "Logout" (aria-label "Remove authorization").
    await bearerForm.locator('button', { hasText: 'Logout' }).waitFor()
    t.equal(await bearerForm.locator('h6').innerText(), 'Authorized', 'the Authorize dialog accepts the token')
    await screenshot(page, '02-swagger-ui-authorized')
    await bearerForm.locator('button.btn-done').click()
    await dialog.waitFor({ state: 'detached' })
    t.ok(await page.locator('.auth-wrapper button.authorize.locked').count() === 1, 'the Authorize button shows as locked')

    // GET /me: expand, Try it out, Execute.
    const me = page.locator('.opblock.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/me"]') }).first()
    await me.locator('.opblock-summary').click()
    await me.locator('button.try-out__btn').click()
    const [sent] = await Promise.all([
      page.waitForResponse((response) => response.url() === `${url}/me` && response.request().method() === 'GET'),
      me.locator('button.execute').click(),
    ])
    t.equal(sent.status(), 200, 'GET /me from Swagger UI: 200')
    t.equal(await bearerOf(sent), accessToken, 'Swagger UI sent the pasted token as the Bearer token')
    // The server's answer: the first tbody row of the live responses table (not the documented ones).
    const live = me.locator('.live-responses-table tbody tr.response').first()
    await live.waitFor()
    t.equal((await live.locator('td.response-col_status').innerText()).trim(), '200', 'the response table shows 200')
    const body = await live.locator('td.response-col_description .highlight-code pre').innerText()
    t.match(body, `"email": "${email}"`, "the Response body shows the user's email")
    await me.scrollIntoViewIfNeeded()
    await live.scrollIntoViewIfNeeded()
    await screenshot(page, '03-swagger-ui-get-me-200')
    await me.screenshot({ path: `${OUTPUT}03b-swagger-ui-get-me-operation.png` })

    const foreign = watch.requests.filter((request) => !request.startsWith(`${url}/`))
    t.same(foreign, [], `every request went to ${url} (no CDN, no other host)`)
    t.ok(watch.requests.some((request) => request.startsWith(`${url}/swagger-ui/static/swagger-ui-bundle.js`)), 'the Swagger UI bundle came from this server')
    noProblems(t, watch)
  })

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
    t.match(await page.locator('#sessions li.current').innerText(), /HeadlessChrome|Chrome/, 'with the browser\'s user agent')

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
})
