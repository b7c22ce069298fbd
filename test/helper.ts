import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { LightMyRequestResponse } from 'fastify'
import { createConnection } from 'mysql2/promise'
import { generateSync } from 'otplib'
import type { Test } from 'tap'
import { buildApp, type App } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { prepareDatabase } from '../src/db/prepare.js'

export const SERVER_URL = 'mysql://root@127.0.0.1:3306'

/** The repository's root: the working directory of the processes below. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))

/**
 * Node's arguments for a real process of ours, for the tests that need one rather than
 * `buildApp` (signals, the log stream, start-up failures): one place, so every such test runs
 * it alike. From the TypeScript sources, through the loader tap runs the tests with (see
 * ts-loader.mjs), so a test file runs without a build and its coverage maps to src/. `npm start`
 * runs the same modules compiled (dist/); .ci/run starts that from a production install, and
 * `npm run bench` measures it.
 */
export const TS_IMPORT = ['--import', String(new URL('./ts-loader.mjs', import.meta.url))]
const fromSource = (entry: string) => [...TS_IMPORT, entry]
export const SERVER_ARGS = fromSource('src/server.ts')
export const CLI_ARGS = fromSource('src/cli/index.ts')
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!!'

/**
 * A configuration as the server would parse it. Abuse limits are off (0), as API.md §6 allows
 * for test harnesses: tests log in far more often than 10 times a minute from one address.
 * Tests of the limits themselves turn them back on through `overrides`.
 */
export function testConfig (overrides: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_SECRET,
    RATE_LIMIT_AUTH: '0',
    RATE_LIMIT_REFRESH: '0',
    RATE_LIMIT_GLOBAL: '0',
    LOGIN_MAX_FAILURES: '0',
    ...overrides,
  })
}

/** A fresh, migrated database of this test file's own, dropped when the test ends. */
export async function createTestDatabase (t: Test): Promise<string> {
  const name = `boardkit_t_${process.pid}_${randomBytes(4).toString('hex')}`
  const url = `${SERVER_URL}/${name}`
  await prepareDatabase(testConfig({ DATABASE_URL: url }))
  t.teardown(async () => {
    const connection = await createConnection(SERVER_URL)
    await connection.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await connection.end()
  })
  return url
}

/** An app on its own database. Pass `databaseUrl` to put a second app on the same one. */
export async function build (t: Test, overrides: Record<string, string> = {}): Promise<App> {
  const DATABASE_URL = overrides.DATABASE_URL ?? await createTestDatabase(t)
  const app = await buildApp(testConfig({ ...overrides, DATABASE_URL }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

let counter = 0
/** A unique, valid registration body. */
export function newUser (overrides: Partial<{ email: string, name: string, password: string }> = {}) {
  counter += 1
  return { email: `user${counter}-${randomBytes(3).toString('hex')}@example.com`, name: `User ${counter}`, password: 'correct horse battery', ...overrides }
}

export interface Session {
  access_token: string
  refresh_token: string
  user: { id: number, email: string, name: string, role: string, email_verified_at: string | null }
}

/** Registers a user and logs them in. */
export async function registerAndLogin (app: App, body = newUser()): Promise<Session & { password: string }> {
  const registered = await app.inject({ method: 'POST', url: '/register', payload: body })
  if (registered.statusCode !== 201) throw new Error(`register failed: ${registered.body}`)
  return { ...await login(app, body.email, body.password), password: body.password }
}

export async function login (app: App, email: string, password: string): Promise<Session> {
  const response = await app.inject({ method: 'POST', url: '/login', payload: { email, password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`)
  return response.json()
}

/** The decoded payload of a JWT, without verifying it. */
export function decodeJwt (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
}

/** A TCP port on 127.0.0.1 that nothing listens on now (taken, then released). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return address.port
}

/** A 401 in the API.md §1 error shape, with the given code and the RFC 6750 challenge. */
export function assertUnauthorized (t: Test, response: LightMyRequestResponse, code: string, what: string) {
  t.equal(response.statusCode, 401, `${what}: 401`)
  const body = response.json()
  t.equal(body.code, code, `${what}: ${code}`)
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: the error shape and nothing else`)
  const challenge = String(response.headers['www-authenticate'] ?? '')
  t.match(challenge, /^Bearer realm="boardkit"/, `${what}: WWW-Authenticate Bearer realm="boardkit"`)
  if (code !== 'authorization_required') t.match(challenge, /error="invalid_token"/, `${what}: error="invalid_token" when a token was sent`)
}

// ---- the second factor (API.md §13)

/** The TOTP code of `secret` for the step `offset` steps from now, as an authenticator app computes it. */
export function totpCode (secret: string, offset = 0, now = Date.now()): string {
  return generateSync({ secret, epoch: Math.floor(now / 1000) + offset * 30 })
}

/**
 * Waits, if need be, until the current 30 s step has at least `margin` ms left, so that a test
 * that computes codes around "now" and sends them is not cut in two by a step boundary.
 */
export async function awayFromStepEdge (margin = 4000): Promise<void> {
  const left = 30_000 - (Date.now() % 30_000)
  if (left < margin) await new Promise((resolve) => setTimeout(resolve, left + 50))
}

/** Turns TOTP on for the session's user (setup, then enable with a code): its secret and recovery codes. */
export async function enrolTotp (app: App, session: { access_token: string }): Promise<{ secret: string, recoveryCodes: string[] }> {
  const setup = await app.inject({ method: 'POST', url: '/mfa/totp/setup', headers: bearer(session.access_token) })
  if (setup.statusCode !== 200) throw new Error(`setup failed: ${setup.body}`)
  const { secret } = setup.json() as { secret: string }
  // No wait for a step edge: a code made now is accepted in the next step too (±1).
  const enabled = await app.inject({ method: 'POST', url: '/mfa/totp/enable', headers: bearer(session.access_token), payload: { code: totpCode(secret) } })
  if (enabled.statusCode !== 200) throw new Error(`enable failed: ${enabled.body}`)
  return { secret, recoveryCodes: (enabled.json() as { recovery_codes: string[] }).recovery_codes }
}
