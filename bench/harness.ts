// Shared by `npm run bench` and `npm run load`: a dedicated database, the API in a child
// process on 127.0.0.1, and seeding through SQL. Loopback only, by construction.
import { fork, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createConnection, type Connection } from 'mysql2/promise'
import argon2 from 'argon2'
import { ARGON2_PARAMETERS } from '../src/plugins/auth/passwords.js'
import { sealTotpSecret } from '../src/mfa/totp.js'

export const SERVER_URL = 'mysql://root@127.0.0.1:3306'
export const PASSWORD = 'bench-password'
const KEY_ENCRYPTION_SECRET = 'benchmark-key-encryption-secret-benchmark!'
/** The TOTP secret of every seedTotpUsers() user (base32, 160 bits). */
export const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

export interface RunningApi {
  url: string
  /** Peak RSS since start, and event-loop delay p99 since the previous call. */
  metrics (): Promise<ProcessMetrics>
  stop (): Promise<void>
}

export interface ProcessMetrics {
  rssPeakMb: number
  rssMb: number
  heapTotalMb: number
  heapUsedMb: number
  eventLoopDelayP99Ms: number
  /** CPU time the process has used since it started (user + system). */
  cpuMs: number
}

/**
 * `npm start`'s command line, read from package.json, so that the benchmarks measure the process
 * operators run (compiled JavaScript, the same environment settings and Node.js flags) and
 * cannot drift from it.
 */
async function startCommand (): Promise<{ env: Record<string, string>, nodeArgs: string[], entry: string }> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
  const words = String(pkg.scripts.start).split(/\s+/)
  const env: Record<string, string> = {}
  while (/^[A-Z_]+=/.test(words[0] ?? '')) {
    const [name, ...value] = words.shift()!.split('=')
    env[name!] = value.join('=')
  }
  const [node, ...nodeArgs] = words
  const entry = nodeArgs.pop()
  if (node !== 'node' || !entry?.endsWith('.js') || nodeArgs.some((arg) => !arg.startsWith('--'))) {
    throw new Error(`package.json's start script is not "[NAME=value] node [--flags] <file>.js": ${pkg.scripts.start}`)
  }
  return { env, nodeArgs, entry: fileURLToPath(new URL(`../${entry}`, import.meta.url)) }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Starts the API against `database` with abuse limits off (one address sends everything), as
 * `npm start` runs it (`npm run bench` and `npm run load` build dist/ first), plus
 * bench/api-probe.js for the figures only the process can see.
 */
export async function startApi (database: string, env: Record<string, string> = {}): Promise<RunningApi> {
  const start = await startCommand()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = fork(start.entry, {
    // API_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=prof", profiles the API process alone.
    execArgv: [...start.nodeArgs, '--import', String(new URL('./api-probe.js', import.meta.url)),
      ...(process.env.API_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    env: {
      PATH: process.env.PATH,
      ...start.env,
      // Not production: the abuse limits are off below, which production refuses (API.md §12).
      // Nothing else on the measured path depends on NODE_ENV.
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      JWT_SECRET: 'benchmark-secret-benchmark-secret-benchmark!',
      // It encrypts the TOTP secrets of seedTotpUsers() below (and, with --algorithm, the keys).
      JWT_KEY_ENCRYPTION_SECRET: KEY_ENCRYPTION_SECRET,
      DATABASE_URL: `${SERVER_URL}/${database}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      // Its own URL: the passkey scenario answers for this origin (on localhost: src/config.ts).
      APP_URL: url,
      RATE_LIMIT_AUTH: '0',
      RATE_LIMIT_REFRESH: '0',
      RATE_LIMIT_GLOBAL: '0',
      LOGIN_MAX_FAILURES: '0',
      ...env,
      // API_ENV="NAME=value ...", e.g. "MALLOC_ARENA_MAX=2", tries a setting on the API process alone.
      ...Object.fromEntries(process.env.API_ENV?.split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]) ?? []),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  // Start-up creates the database if needed and migrates it before listening.
  const deadline = Date.now() + 60_000
  while (!await fetch(`${url}/health`).then((response) => response.ok, () => false)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`the API did not start (exit code ${child.exitCode})`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return {
    url,
    metrics: () => new Promise((resolve) => {
      child.once('message', (message: { metrics: ProcessMetrics }) => resolve(message.metrics))
      child.send('metrics')
    }),
    stop: async () => {
      // SIGTERM, as a process manager stops `npm start`: the server closes gracefully.
      child.kill('SIGTERM')
      await exited
    },
  }
}

export async function connect (database?: string): Promise<Connection> {
  return createConnection(database ? `${SERVER_URL}/${database}` : SERVER_URL)
}

/** Drops and recreates the benchmark database; the API's start-up migrates it. */
export async function resetDatabase (database: string): Promise<void> {
  const connection = await connect()
  await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await connection.end()
}

/**
 * Users user1..userN@bench.test (all with PASSWORD, hashed once) and `boards` boards spread over
 * them, generated inside MariaDB from its sequence tables: a million rows in seconds.
 */
export async function seed (database: string, { users, boards }: { users: number, boards: number }) {
  const connection = await connect(database)
  const hash = await argon2.hash(PASSWORD, ARGON2_PARAMETERS)
  await connection.query(
    `INSERT INTO users (email, name, password_hash) SELECT CONCAT('user', seq, '@bench.test'), CONCAT('User ', seq), ? FROM seq_1_to_${users}`,
    [hash])
  if (boards > 0) {
    await connection.query(
      `INSERT INTO boards (title, content, user_id) SELECT CONCAT('Board ', seq), REPEAT('Lorem ipsum dolor sit amet. ', 8), 1 + seq % ${users} FROM seq_1_to_${boards}`)
  }
  await connection.end()
}

/**
 * Users totp1..totpN@bench.test with PASSWORD and TOTP on (API.md §13), the secret TOTP_SECRET
 * sealed for each as the API seals it. A code works once per user, so a run needs a user per login.
 */
export async function seedTotpUsers (database: string, count: number) {
  const connection = await connect(database)
  const hash = await argon2.hash(PASSWORD, ARGON2_PARAMETERS)
  await connection.query(
    `INSERT INTO users (email, name, password_hash) SELECT CONCAT('totp', seq, '@bench.test'), CONCAT('TOTP user ', seq), ? FROM seq_1_to_${count}`,
    [hash])
  const [rows] = await connection.query("SELECT id FROM users WHERE email LIKE 'totp%@bench.test'") as unknown as [Array<{ id: number }>]
  for (let start = 0; start < rows.length; start += 1000) {
    const batch = rows.slice(start, start + 1000).map(({ id }) => [id, sealTotpSecret(TOTP_SECRET, id, KEY_ENCRYPTION_SECRET), new Date()])
    await connection.query('INSERT INTO totp_credentials (user_id, secret, enabled_at) VALUES ?', [batch])
  }
  await connection.end()
}

/** `count` revoked tokens of the seeded users that have not expired yet: the token check must stay one index probe. */
export async function seedBlocklist (database: string, { users, count }: { users: number, count: number }) {
  const connection = await connect(database)
  await connection.query(
    `INSERT INTO token_blocklist (jti, kind, user_id, expires_at) SELECT UUID(), 'access', 1 + seq % ${users}, NOW(3) + INTERVAL 1 DAY FROM seq_1_to_${count}`)
  await connection.end()
}

/**
 * Waits (at most `timeoutMs`) until InnoDB has stopped writing back the pages a bulk load
 * dirtied: until their number has not fallen for three seconds. (It need not reach zero: an
 * idle MariaDB keeps some dirty pages.) A measurement right after seeding would otherwise be
 * one of the database flushing in the background.
 */
export async function waitForQuietDatabase (timeoutMs = 60_000) {
  const connection = await connect()
  try {
    let lowest = Infinity
    let stable = 0
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline && stable < 3;) {
      const [[row]] = await connection.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'") as unknown as [[{ Value: string }]]
      const dirty = Number(row.Value)
      stable = dirty < lowest ? 0 : stable + 1
      lowest = Math.min(lowest, dirty)
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
  } finally {
    await connection.end()
  }
}

export async function login (url: string, email: string): Promise<{ access_token: string, refresh_token: string }> {
  const response = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
  if (!response.ok) throw new Error(`login ${email}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<{ access_token: string, refresh_token: string }>
}
