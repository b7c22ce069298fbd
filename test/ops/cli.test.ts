import { spawn } from 'node:child_process'
import t from 'tap'
import { build, CLI_ARGS, createTestDatabase, login, REPO_ROOT, TEST_SECRET } from '../helper.js'

// `npm run cli -- <command>`, the real process: the operator's way to make the first admin,
// purge the blocklist by hand and load demo data (docs/getting-started.md, "Admins and demo data").

interface Outcome { code: number | null, stdout: string, stderr: string }

function cli (args: string[], env: Record<string, string>, stdin = ''): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(stdin)
  })
}

// Each case is a process of its own (tsx's start-up included): a few seconds each, and far more
// on a machine that other suites keep busy. The cases are few on purpose, and the file gets
// more than .taprc's 120 s.
t.setTimeout(300_000)

t.test('an unknown command: exit 1 with the usage text, before any database work', async (t) => {
  const outcome = await cli(['frobnicate'], { DATABASE_URL: 'mysql://root@127.0.0.1:1/unused' })
  t.equal(outcome.code, 1)
  t.match(outcome.stderr, 'boardkit: unknown command: frobnicate')
  t.match(outcome.stderr, 'usage: npm run cli --')
})

t.test('create-admin makes an admin who can log in; the password comes from ADMIN_PASSWORD or stdin', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const made = await cli(['create-admin', '--email', ' Root@Example.com ', '--name', 'Root'], { DATABASE_URL, ADMIN_PASSWORD: 'admin-password-1' })
  t.equal(made.code, 0, made.stderr)
  t.match(made.stdout, /^created admin #\d+ root@example\.com$/m, 'the email is trimmed and lower-cased')
  t.notMatch(made.stdout + made.stderr, 'admin-password-1', 'the password is never echoed')

  const piped = await cli(['create-admin', '--email', 'second@example.com', '--name', 'Second'], { DATABASE_URL }, 'admin-password-2\n')
  t.equal(piped.code, 0, piped.stderr)

  const app = await build(t, { DATABASE_URL })
  for (const [email, password] of [['root@example.com', 'admin-password-1'], ['second@example.com', 'admin-password-2']]) {
    const session = await login(app, email!, password!)
    const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${session.access_token}` } })
    t.equal(me.json().role, 'admin', `${email} is an admin`)
  }

  const again = await cli(['create-admin', '--email', 'root@example.com', '--name', 'Root'], { DATABASE_URL, ADMIN_PASSWORD: 'admin-password-1' })
  t.equal(again.code, 1, 'a taken email fails')
  t.equal(again.stderr.trim(), 'boardkit: An account with this email already exists', 'in one line, no stack trace')

  const nameless = await cli(['create-admin', '--email', 'third@example.com'], { DATABASE_URL, ADMIN_PASSWORD: 'admin-password-3' })
  t.equal(nameless.code, 1)
  t.match(nameless.stderr, 'boardkit: create-admin needs --email and --name')
  t.match(nameless.stderr, 'usage: npm run cli --')
})

t.test('seed loads the demo data once; purge-blocklist runs', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const first = await cli(['seed'], { DATABASE_URL })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, 'seeded 3 users (password "demo-password") and 300 boards')
  const second = await cli(['seed'], { DATABASE_URL })
  t.equal(second.code, 0, second.stderr)
  t.match(second.stdout, 'alice@example.com exists: demo data is already there')

  const app = await build(t, { DATABASE_URL })
  const session = await login(app, 'bob@example.com', 'demo-password')
  const page = await app.inject({ method: 'GET', url: '/boards?limit=100', headers: { authorization: `Bearer ${session.access_token}` } })
  t.equal(page.json().items.length, 100, 'the seeded boards are there')

  const production = await cli(['seed'], { DATABASE_URL: await createTestDatabase(t), NODE_ENV: 'production', JWT_KEY_ENCRYPTION_SECRET: TEST_SECRET })
  t.equal(production.code, 1, 'seed refuses to run in production (API.md §12)')
  t.equal(production.stderr.trim(), 'boardkit: seed creates demo accounts with a published password; it refuses to run with NODE_ENV=production', 'with one clear line')

  // The audit log: exported as JSON lines, oldest first; --since filters; AUDIT_RETENTION purges.
  const exported = await cli(['events', 'export'], { DATABASE_URL })
  t.equal(exported.code, 0, exported.stderr)
  const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number, type: string, details: unknown })
  t.same(lines.map((line) => line.type), ['user.registered', 'user.registered', 'user.registered', 'login.succeeded'], 'the seeded users and the login, oldest first')
  t.same(lines.map((line) => line.id), [...lines.map((line) => line.id)].sort((a, b) => a - b))
  await app.pool.query("UPDATE security_events SET occurred_at = NOW(3) - INTERVAL 10 DAY WHERE type = 'user.registered'")
  const recent = await cli(['events', 'export', '--since', '1d'], { DATABASE_URL })
  t.same(recent.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { type: string }).type), ['login.succeeded'], '--since 1d: only the login')
  const fromDate = await cli(['events', 'export', '--since', new Date(Date.now() + 60_000).toISOString()], { DATABASE_URL })
  t.equal(fromDate.code, 0)
  t.equal(fromDate.stdout, '', '--since the future: nothing')
  const bad = await cli(['events', 'export', '--since', 'last tuesday'], { DATABASE_URL })
  t.equal(bad.code, 1, 'a --since that is neither a time nor a duration')
  t.match(bad.stderr, 'boardkit: --since: not an ISO 8601 time or a duration: last tuesday')
  t.match((await cli(['events', 'list'], { DATABASE_URL })).stderr, 'boardkit: unknown events command: list')

  const purged = await cli(['purge-blocklist'], { DATABASE_URL, AUDIT_RETENTION: '5d' })
  t.equal(purged.code, 0, purged.stderr)
  t.match(purged.stdout, /3 events past AUDIT_RETENTION/, 'the three registrations, ten days old, are past a 5-day retention')
  t.match(purged.stdout, /^removed \d+ expired blocklist rows, \d+ expired or ended sessions, \d+ login-failure rows, \d+ old one-time tokens, \d+ events past AUDIT_RETENTION, \d+ finished outbox rows, \d+ expired second-factor challenges and \d+ expired passkey challenges$/m)
})
