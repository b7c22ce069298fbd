// The shared fixture of the browser end-to-end tests (one file per flow beside it): the real
// server (as `npm start` runs it) on a database of its own, one headless Chromium for the whole
// file, pages that record what went wrong, and screenshots in test-output/.
//
// Needs Chromium at /usr/bin/chromium (Debian's `chromium` package; CI installs it) and MariaDB
// at 127.0.0.1:3306 (root, no password). Only loopback addresses are used. Screenshots of each
// key step go to test-output/ (git-ignored).
//
// The flow files are named *.e2e.ts, not *.test.ts, so that tap's default file set (what
// `npm test` runs) does not include them: `tap test-e2e` runs every .ts file in this folder, this
// one too (it defines no test, so it passes at once).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createConnection } from 'mysql2/promise'
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core'
import t, { type Test } from 'tap'
import { REPO_ROOT, SERVER_ARGS } from '../test/helper.js'

export const OUTPUT = fileURLToPath(new URL('../test-output/', import.meta.url))
const MYSQL = 'mysql://root@127.0.0.1:3306'
const CHROMIUM = '/usr/bin/chromium'
export const PASSWORD = 'correct horse battery'

// ---------------------------------------------------------------------------------------------
// The server

export async function freePort (): Promise<number> {
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
export async function startServer (t: Test, extraEnv: Record<string, string> | ((url: string) => Record<string, string>) = {}): Promise<string> {
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

export async function api (url: string, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, data: text ? JSON.parse(text) as Record<string, unknown> : null }
}

/** Registers a new user through the API; returns its email. */
export async function registerUser (url: string, name: string): Promise<string> {
  const email = `${name.toLowerCase().replaceAll(' ', '.')}-${randomBytes(3).toString('hex')}@example.com`
  const { status, data } = await api(url, 'POST', '/register', { email, name, password: PASSWORD })
  if (status !== 201) throw new Error(`register: ${status} ${JSON.stringify(data)}`)
  return email
}

// ---------------------------------------------------------------------------------------------
// The browser

let browser: Browser | undefined
export async function getBrowser (): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
  return browser
}
t.teardown(async () => { await browser?.close() })

export interface Problem { kind: 'console' | 'pageerror' | 'csp' | 'requestfailed', text: string, url: string }

/** What a page did: every request, every response, and everything that went wrong. */
export interface Watch {
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
export async function openPage (t: Test, origin: string): Promise<Watch> {
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
  page.on('requestfailed', (request) => {
    // A fetch still under way when the page reloads or navigates is aborted by the browser
    // itself (net::ERR_ABORTED): the page going away, not a request that failed.
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return
    record({ kind: 'requestfailed', text: `${request.method()} ${request.url()}: ${request.failure()?.errorText}`, url: request.url() })
  })
  page.on('response', (response) => { watch.responses.push(response) })
  return watch
}

/** Responses to `method path` (path without the query string), in order. */
export function responsesTo (watch: Watch, origin: string, method: string, path: string): Response[] {
  return watch.responses.filter((response) =>
    response.request().method() === method && response.url().split('?')[0] === `${origin}${path}`)
}

export async function screenshot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${OUTPUT}${name}.png` })
}

/** No console errors, uncaught errors, CSP violations or failed requests, other than `expected`. */
export function noProblems (t: Test, watch: Watch, expected: Array<(problem: Problem) => boolean> = []) {
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

export const bearerOf = async (response: Response) => (await response.request().allHeaders()).authorization?.replace(/^Bearer /, '')

// ---------------------------------------------------------------------------------------------

await mkdir(OUTPUT, { recursive: true })

/**
 * The demo's #message once it shows `expected` (or after 5 s, whatever it shows then): the page
 * writes it after the response's body is read, a moment after waitForResponse() returns.
 */
export async function messageShowing (page: Page, expected: string | RegExp): Promise<string> {
  await page.locator('#message', { hasText: expected }).waitFor({ timeout: 5000 }).catch(() => {})
  return page.locator('#message').innerText()
}
