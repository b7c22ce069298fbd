import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createConnection } from 'mysql2/promise'
import t from 'tap'
import { readFileSync } from 'node:fs'
import { CONFIG_KEYS, ConfigError, EXAMPLE_JWT_SECRET, loadConfig, parseDuration } from '../../src/config.js'
import { freePort, REPO_ROOT, SERVER_ARGS, SERVER_URL } from '../helper.js'

const GOOD_SECRET = 'a-production-secret-of-more-than-32-bytes!'
const GOOD_KEY_SECRET = 'a-production-key-encryption-secret-of-32-bytes!'

/** The ConfigError loadConfig throws for `source`, or a failure if it throws none. */
function configError (source: Record<string, string>): ConfigError {
  try {
    loadConfig(source)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error(`loadConfig(${JSON.stringify(source)}) did not throw`)
}

t.test('loadConfig', async (t) => {
  t.test('defaults', async (t) => {
    const config = loadConfig({})
    t.match(config, {
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: 3000,
      LOG_LEVEL: 'info',
      DATABASE_URL: 'mysql://root@127.0.0.1:3306/boardkit',
      DB_POOL_SIZE: 10,
      DB_CONNECT_TIMEOUT: 1000,
      JWT_ISSUER: 'boardkit',
      JWT_AUDIENCE: 'boardkit-api',
      ACCESS_TOKEN_TTL: 15 * 60_000,
      REFRESH_TOKEN_TTL: 14 * 86_400_000,
      REFRESH_REUSE_GRACE: 10_000,
      JWT_SECRET_GENERATED: true,
    })
    t.ok(Object.isFrozen(config), 'the configuration is frozen')
  })

  t.test('values are parsed to their types', async (t) => {
    const config = loadConfig({ PORT: '8080', DB_POOL_SIZE: '3', NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '0.0.0.0' })
    t.equal(config.PORT, 8080)
    t.equal(config.DB_POOL_SIZE, 3)
    t.equal(config.NODE_ENV, 'test')
    t.equal(config.LOG_LEVEL, 'silent')
    t.equal(config.HOST, '0.0.0.0')
  })

  t.test('durations are milliseconds: 15m → 900000, a bare number is seconds', async (t) => {
    t.equal(loadConfig({ ACCESS_TOKEN_TTL: '15m' }).ACCESS_TOKEN_TTL, 900_000)
    t.equal(loadConfig({ ACCESS_TOKEN_TTL: '900' }).ACCESS_TOKEN_TTL, 900_000)
    t.equal(loadConfig({ DB_CONNECT_TIMEOUT: '250ms' }).DB_CONNECT_TIMEOUT, 250)
    t.equal(loadConfig({ REFRESH_REUSE_GRACE: '30s' }).REFRESH_REUSE_GRACE, 30_000)
    t.equal(loadConfig({ REFRESH_TOKEN_TTL: '2h' }).REFRESH_TOKEN_TTL, 7_200_000)
    t.equal(loadConfig({ REFRESH_TOKEN_TTL: '7d' }).REFRESH_TOKEN_TTL, 7 * 86_400_000)
    t.equal(parseDuration('15m'), 900_000)
    t.throws(() => parseDuration('15 minutes'), ConfigError)
  })

  t.test('a bad duration is a ConfigError naming the variable', async (t) => {
    t.match(configError({ ACCESS_TOKEN_TTL: '15 minutes' }).message, /ACCESS_TOKEN_TTL/)
    t.match(configError({ DB_CONNECT_TIMEOUT: '-1s' }).message, /DB_CONNECT_TIMEOUT/)
  })

  t.test('a bad PORT is a ConfigError naming PORT', async (t) => {
    for (const port of ['abc', '70000', '-1', '3000abc']) {
      const error = configError({ PORT: port })
      t.equal(error.name, 'ConfigError')
      t.match(error.message, /^PORT\b/, `PORT=${port}: ${error.message}`)
    }
  })

  // A value that is not an integer must stop the start, not be truncated to another port
  // (docs/operations.md: "a bad value stops the process with one line naming it").
  t.test('a non-integer PORT is a ConfigError, not silently truncated', async (t) => {
    for (const port of ['80.5', '1e3']) {
      let outcome: string
      try {
        outcome = `accepted as ${loadConfig({ PORT: port }).PORT}`
      } catch (error) {
        outcome = error instanceof ConfigError ? error.message : String(error)
      }
      t.match(outcome, /^PORT\b/, `PORT=${port} is refused (${outcome})`)
    }
  })

  t.test('other bad values name their variable', async (t) => {
    t.match(configError({ NODE_ENV: 'staging' }).message, /^NODE_ENV\b.*development, production, test/)
    t.match(configError({ LOG_LEVEL: 'loud' }).message, /^LOG_LEVEL\b/)
    t.match(configError({ DATABASE_URL: 'postgres://localhost/x' }).message, /^DATABASE_URL\b/)
    t.match(configError({ DB_POOL_SIZE: '0' }).message, /^DB_POOL_SIZE\b/)
  })

  t.test('OIDC_PROVIDERS and OIDC_REDIRECT_URIS are checked at start (API.md §17)', async (t) => {
    const provider = { id: 'corp', issuer: 'https://sso.example.com/realms/corp', client_id: 'boardkit', client_secret: 's' }
    const parsed = loadConfig({ OIDC_PROVIDERS: JSON.stringify([provider, { ...provider, id: 'local', issuer: 'http://127.0.0.1:8080', scopes: ['email'] }]), OIDC_REDIRECT_URIS: 'https://app.example.com/done, http://127.0.0.1:3000/demo' })
    t.same(parsed.OIDC_PROVIDERS.map((p) => [p.id, p.name, p.scopes]), [['corp', 'corp', ['openid', 'email', 'profile']], ['local', 'local', ['openid', 'email']]], 'defaults: name = id, openid always in the scopes')
    t.same(parsed.OIDC_REDIRECT_URIS, ['https://app.example.com/done', 'http://127.0.0.1:3000/demo'])
    t.same(loadConfig({}).OIDC_PROVIDERS, [], 'none by default')
    t.match(configError({ OIDC_PROVIDERS: '{"id":' }).message, /^OIDC_PROVIDERS: not valid JSON/)
    t.match(configError({ OIDC_PROVIDERS: JSON.stringify([{ ...provider, issuer: 'http://sso.example.com' }]) }).message, /^OIDC_PROVIDERS: corp: issuer must be https:\/\//, 'plain http only on loopback')
    t.match(configError({ OIDC_PROVIDERS: JSON.stringify([provider, provider]) }).message, /used twice/)
    t.match(configError({ OIDC_PROVIDERS: JSON.stringify([{ ...provider, id: 'Not An Id' }]) }).message, /id must be/)
    t.match(configError({ OIDC_PROVIDERS: JSON.stringify([{ ...provider, client_secret: '' }]) }).message, /client_secret is required/)
    t.match(configError({ OIDC_PROVIDERS: JSON.stringify([{ ...provider, tenant: 'x' }]) }).message, /unknown key "tenant"/)
    t.match(configError({ OIDC_REDIRECT_URIS: 'https://app.example.com/#x' }).message, /^OIDC_REDIRECT_URIS: .*no fragment/)
    t.match(configError({ OIDC_REDIRECT_URIS: 'javascript:alert(1)' }).message, /^OIDC_REDIRECT_URIS: .*http/)
  })

  t.test('WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS are checked at start (API.md §14)', async (t) => {
    const byDefault = loadConfig({})
    t.equal(byDefault.WEBAUTHN_RP_ID, 'localhost', 'APP_URL on 127.0.0.1: browsers refuse an IP address as RP ID, so localhost')
    t.same(byDefault.WEBAUTHN_ORIGINS, ['http://localhost:3000'], 'and the same URL on localhost')
    t.same(loadConfig({ APP_URL: 'http://[::1]:8080/demo' }).WEBAUTHN_ORIGINS, ['http://localhost:8080'], 'an IPv6 loopback too, without the path')
    const app = loadConfig({ APP_URL: 'https://app.example.com/demo' })
    t.equal(app.WEBAUTHN_RP_ID, 'app.example.com', 'else the host of APP_URL')
    t.same(app.WEBAUTHN_ORIGINS, ['https://app.example.com'])
    const wide = loadConfig({ APP_URL: 'https://app.example.com', WEBAUTHN_RP_ID: 'Example.com', WEBAUTHN_ORIGINS: 'https://app.example.com, https://example.com/' })
    t.equal(wide.WEBAUTHN_RP_ID, 'example.com', 'a parent domain, lower-cased')
    t.same(wide.WEBAUTHN_ORIGINS, ['https://app.example.com', 'https://example.com'], 'origins on it or a subdomain')
    t.match(configError({ WEBAUTHN_RP_ID: '10.0.0.1' }).message, /^WEBAUTHN_RP_ID: .*domain name/, 'an IP address')
    t.match(configError({ WEBAUTHN_RP_ID: 'example.com:443' }).message, /^WEBAUTHN_RP_ID: /, 'a port')
    t.match(configError({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.org' }).message, /^WEBAUTHN_ORIGINS: .*not on WEBAUTHN_RP_ID/, 'an origin elsewhere')
    t.match(configError({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://notexample.com' }).message, /not on WEBAUTHN_RP_ID/, 'a suffix that is not a subdomain')
    t.match(configError({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'http://app.example.com' }).message, /must be https:\/\//, 'plain http off localhost')
    t.match(configError({ WEBAUTHN_ORIGINS: 'http://localhost:3000/demo' }).message, /an origin alone/, 'a path')
    t.match(configError({ WEBAUTHN_ORIGINS: 'not a url' }).message, /is not a URL/)
  })

  t.test('production refuses a missing, short or placeholder JWT_SECRET', async (t) => {
    t.match(configError({ NODE_ENV: 'production' }).message, /JWT_SECRET/)
    t.match(configError({ NODE_ENV: 'production', JWT_SECRET: 'short-secret' }).message, /JWT_SECRET.*32/)
    t.match(configError({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(31) }).message, /JWT_SECRET/)
    t.match(configError({ NODE_ENV: 'production', JWT_SECRET: EXAMPLE_JWT_SECRET }).message, /JWT_SECRET.*placeholder/)
    const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET, JWT_KEY_ENCRYPTION_SECRET: GOOD_KEY_SECRET })
    t.equal(config.JWT_SECRET, GOOD_SECRET)
    t.equal(config.JWT_SECRET_GENERATED, false)
    t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), JWT_KEY_ENCRYPTION_SECRET: GOOD_KEY_SECRET }).JWT_SECRET_GENERATED, false, '32 bytes is enough')
  })

  t.test('production refuses an abuse limit turned off (API.md §12)', async (t) => {
    for (const key of ['RATE_LIMIT_AUTH', 'RATE_LIMIT_REFRESH', 'RATE_LIMIT_GLOBAL', 'LOGIN_MAX_FAILURES']) {
      t.match(configError({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET, JWT_KEY_ENCRYPTION_SECRET: GOOD_KEY_SECRET, [key]: '0' }).message, new RegExp(`^${key}: 0 turns this abuse limit off, which production refuses`), key)
      t.equal(loadConfig({ NODE_ENV: 'test', [key]: '0' })[key as 'RATE_LIMIT_AUTH'], 0, `${key}=0 is allowed outside production`)
    }
    t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET, JWT_KEY_ENCRYPTION_SECRET: GOOD_KEY_SECRET, RATE_LIMIT_AUTH: '5' }).RATE_LIMIT_AUTH, 5, 'a stricter limit is fine')
  })

  t.test('outside production a missing secret is generated, per process', async (t) => {
    for (const NODE_ENV of ['development', 'test']) {
      const config = loadConfig({ NODE_ENV })
      t.equal(config.JWT_SECRET_GENERATED, true, NODE_ENV)
      t.ok(Buffer.byteLength(config.JWT_SECRET) >= 32, 'the generated secret is at least 32 bytes')
    }
    t.not(loadConfig({}).JWT_SECRET, loadConfig({}).JWT_SECRET, 'a new random one each time')
    const configured = loadConfig({ JWT_SECRET: GOOD_SECRET })
    t.equal(configured.JWT_SECRET, GOOD_SECRET)
    t.equal(configured.JWT_SECRET_GENERATED, false)
  })

  t.test('empty strings count as unset', async (t) => {
    const config = loadConfig({ NODE_ENV: '', PORT: '', HOST: '', LOG_LEVEL: '', DATABASE_URL: '', ACCESS_TOKEN_TTL: '', JWT_SECRET: '' })
    t.equal(config.NODE_ENV, 'development')
    t.equal(config.PORT, 3000)
    t.equal(config.HOST, '127.0.0.1')
    t.equal(config.LOG_LEVEL, 'info')
    t.equal(config.DATABASE_URL, 'mysql://root@127.0.0.1:3306/boardkit')
    t.equal(config.ACCESS_TOKEN_TTL, 900_000)
    t.equal(config.JWT_SECRET_GENERATED, true, 'an empty JWT_SECRET is generated')
    t.match(configError({ NODE_ENV: 'production', JWT_SECRET: '' }).message, /JWT_SECRET/, 'and refused in production')
    t.match(configError({ NODE_ENV: 'production', JWT_SECRET: '   ' }).message, /JWT_SECRET/, 'blank counts as empty')
  })

  t.test('variables that are not ours are ignored', async (t) => {
    const config = loadConfig({ HOME: '/root', SOMETHING_ELSE: 'x' }) as unknown as Record<string, unknown>
    t.notOk('HOME' in config)
    t.notOk('SOMETHING_ELSE' in config)
  })
})

// ---------------------------------------------------------------------------------------------
// The real process: `tsx src/server.ts`, with an environment built from scratch (PATH only).

interface Started {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>
}

function startServer (env: Record<string, string>): Started {
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** The exit, or 'timeout' (and a SIGKILL) if the process is still running after `ms`. */
async function exitWithin (started: Started, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })
  const result = await Promise.race([started.exited, timeout])
  clearTimeout(timer)
  if (result === 'timeout') started.child.kill('SIGKILL')
  return result
}

async function waitForHealth (url: string, started: Started, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) return false
    try {
      const response = await fetch(`${url}/health`)
      if (response.ok) return true
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

t.test('.env.example documents every variable, each with a comment, and nothing else', async (t) => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const lines = text.split('\n')
  const documented = lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split('=')[0])
  t.same([...documented].sort(), [...CONFIG_KEYS].sort())
  for (const key of documented) {
    const index = lines.findIndex((line) => line.startsWith(`${key}=`))
    t.ok(lines.slice(0, index).reverse().find((line) => !/^[A-Z_]+=/.test(line))?.startsWith('#'), `${key} has a comment above it`)
  }
  t.doesNotThrow(() => loadConfig(Object.fromEntries(lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split(/=(.*)/s).slice(0, 2)))),
    'the example itself is a valid configuration')
})

t.test('metrics and traces (API.md §18): off by default, each bad value a ConfigError naming it', async (t) => {
  t.match(loadConfig({}), {
    METRICS_PORT: undefined, METRICS_TOKEN: undefined, OTEL_EXPORTER_OTLP_ENDPOINT: undefined, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'boardkit', OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_TRACES_SAMPLER_ARG: 1, OTEL_BSP_SCHEDULE_DELAY: 5000,
  })
  t.match(loadConfig({ METRICS_PORT: '9464', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }),
    { METRICS_PORT: 9464, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: 0.1, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })
  const short = configError({ METRICS_TOKEN: 'a-short-token' })
  t.match(short.message, /^METRICS_TOKEN: must be at least 32 bytes/)
  t.notMatch(short.message, 'a-short-token', 'the token is not echoed')
  t.match(configError({ PORT: '3000', METRICS_PORT: '3000' }).message, /^METRICS_PORT: must differ from PORT/)
  t.match(configError({ METRICS_PORT: '70000' }).message, /^METRICS_PORT\b/)
  for (const protocol of ['grpc', 'http/protobuf']) {
    t.match(configError({ OTEL_EXPORTER_OTLP_PROTOCOL: protocol }).message, /^OTEL_EXPORTER_OTLP_PROTOCOL: only http\/json is supported/)
  }
  t.match(configError({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }).message, /^OTEL_TRACES_SAMPLER: must be one of always_on, /)
  for (const ratio of ['1.5', '-0.1', 'half']) t.match(configError({ OTEL_TRACES_SAMPLER_ARG: ratio }).message, /^OTEL_TRACES_SAMPLER_ARG\b/)
  t.match(configError({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }).message, /^OTEL_EXPORTER_OTLP_ENDPOINT\b/)
  t.match(configError({ OTEL_BSP_SCHEDULE_DELAY: '0' }).message, /^OTEL_BSP_SCHEDULE_DELAY\b/)
})

t.test('server process', async (t) => {
  t.test('production without JWT_SECRET: exit 1, one line naming JWT_SECRET, no stack', async (t) => {
    const started = startServer({ NODE_ENV: 'production' })
    const code = await exitWithin(started, 30_000)
    t.equal(code, 1, 'exit code 1', { stderr: started.stderr() })
    const lines = started.stderr().trimEnd().split('\n')
    t.equal(lines.length, 1, 'exactly one line on stderr', { stderr: started.stderr() })
    t.match(lines[0], /JWT_SECRET/)
    t.notMatch(started.stderr(), '    at ', 'no stack trace')
    t.notMatch(started.stdout(), '    at ', 'no stack trace on stdout either')
  })

  t.test('a bad PORT: exit 1, one line naming PORT', async (t) => {
    const started = startServer({ PORT: 'eighty' })
    t.equal(await exitWithin(started, 30_000), 1, 'exit code 1', { stderr: started.stderr() })
    const lines = started.stderr().trimEnd().split('\n')
    t.equal(lines.length, 1, 'exactly one line on stderr', { stderr: started.stderr() })
    t.match(lines[0], /PORT/)
    t.notMatch(started.stderr(), '    at ')
  })

  t.test('DATABASE_URL at a closed port: exit 1 by itself, one line naming host and port', async (t) => {
    const port = await freePort()
    const startedAt = Date.now()
    const started = startServer({ DATABASE_URL: `mysql://root@127.0.0.1:${port}/boardkit_t_cfg_unreachable`, LOG_LEVEL: 'silent' })
    // The server retries for 5 s by design and then gives up. The bound only tells "gave up" from
    // "hangs": a process start on this shared 2-core machine took 12 s under a parallel suite.
    const code = await exitWithin(started, 30_000)
    t.equal(code, 1, `exit code 1, no hang (took ${Date.now() - startedAt} ms)`, { stderr: started.stderr() })
    const lines = started.stderr().trimEnd().split('\n')
    t.equal(lines.length, 1, 'exactly one line on stderr', { stderr: started.stderr() })
    t.match(lines[0], `127.0.0.1:${port}`)
    t.notMatch(started.stderr(), '    at ', 'no stack trace')
  })

  t.test('a good start creates and migrates the database, SIGTERM exits 0', async (t) => {
    const database = `boardkit_t_cfg_${randomBytes(4).toString('hex')}`
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const started = startServer({ PORT: String(port), DATABASE_URL: `${SERVER_URL}/${database}`, LOG_LEVEL: 'warn' })
    t.teardown(async () => {
      if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill('SIGKILL')
      const connection = await createConnection(SERVER_URL)
      await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
      await connection.end()
    })

    t.ok(await waitForHealth(url, started, 30_000), 'GET /health answers', { stdout: started.stdout(), stderr: started.stderr() })
    const health = await fetch(`${url}/health`)
    t.same(await health.json(), { status: 'ok' })
    const ready = await fetch(`${url}/ready`)
    t.equal(ready.status, 200, '/ready: the database answers')

    const connection = await createConnection(SERVER_URL)
    const [rows] = await connection.query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ?', [database])
    await connection.end()
    const tables = (rows as Array<{ name: string }>).map((row) => row.name)
    t.ok(tables.length > 0, `the database ${database} exists and has tables`)
    t.ok(tables.includes('users'), 'users', { tables })
    t.ok(tables.includes('token_blocklist'), 'token_blocklist', { tables })

    started.child.kill('SIGTERM')
    t.equal(await exitWithin(started, 15_000), 0, 'SIGTERM: exit code 0', { stderr: started.stderr() })
    t.notMatch(started.stderr(), '    at ', 'no stack trace on shutdown')
  })
})
