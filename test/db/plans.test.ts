import { createHash, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { createConnection, type Connection, type Pool } from 'mysql2/promise'
import { createDatabasePool } from '../../src/db/pool.js'
import { createDatabase } from '../../src/db/database.js'
import { createRepositories, type Repositories } from '../../src/repositories/index.js'
import { NO_CONTEXT } from '../../src/repositories/events.js'
import { createTestDatabase, testConfig } from '../helper.js'

// MariaDB picks a plan from table statistics. A page that walks an index on the benchmark's
// 1 000 users read and sorted every board of a deployment with two users (issue 12). So every
// statement on the request path is run here, through the real repositories, on data shapes
// chosen to tempt the optimizer, before and after ANALYZE TABLE; each statement is executed with
// ANALYZE FORMAT=JSON (inside a transaction that is rolled back) and its real plan is checked:
// no full scan of a table, no filesort, no temporary table, no join buffer, and no table access
// that reads more rows than a page (20) plus a small constant.

const BOARDS = 131_072
const PAGE = 20
const EVENTS = 65_536
const MAX_ROWS_PER_ACCESS = PAGE + 5

interface Shape {
  name: string
  users: number
  /** SQL for the author of the board made from sequence row `seq`. */
  authorOf: string
  /** An author with many boards, one with few (or many), one with none. */
  authors: { name: string, id: number }[]
}

const SHAPES: Shape[] = [
  {
    name: 'one user owns all 131,072 boards, one user has none',
    users: 2,
    authorOf: '1',
    authors: [{ name: 'the author of every board', id: 1 }, { name: 'an author with none', id: 2 }],
  },
  {
    name: 'two users: 99 % and 1 % of the boards, spread through the table',
    users: 2,
    authorOf: 'IF(seq % 100 = 0, 2, 1)',
    authors: [{ name: 'the 99 % author', id: 1 }, { name: 'the 1 % author', id: 2 }, { name: 'an author that does not exist', id: 3 }],
  },
  {
    name: '1,000 users, boards round robin over 999 of them',
    users: 1000,
    authorOf: '1 + seq % 999',
    authors: [{ name: 'an author of 0.1 %', id: 7 }, { name: 'an author with none', id: 1000 }],
  },
]

interface Statement { sql: string, plan: unknown }
type Run = (...args: unknown[]) => Promise<unknown>

const SKIPPED = /^\s*(begin|commit|rollback|savepoint|release|set\s)/i
const sqlOf = (options: unknown) => typeof options === 'string' ? options : (options as { sql: string }).sql
const valuesOf = (options: unknown, values: unknown) => values ?? (typeof options === 'object' ? (options as { values?: unknown }).values : undefined)

/**
 * The pool the repositories get, with each statement run first under ANALYZE FORMAT=JSON and
 * undone: on a connection of its own for statements outside a transaction, and on the
 * transaction's own connection behind a savepoint for those inside one (a separate connection
 * would wait for the locks the transaction holds).
 */
function recordingPool (pool: Pool, analyzer: Connection, statements: Statement[]): Pool {
  async function analyze (connection: { query: Run }, inTransaction: boolean, options: unknown, values: unknown) {
    const text = sqlOf(options)
    if (SKIPPED.test(text)) return
    // The analyzer connection runs in UTC like the pool, so it writes dates as the pool would.
    const inlined = analyzer.format(text, valuesOf(options, values) as unknown[])
    await connection.query(inTransaction ? 'SAVEPOINT plan_check' : 'START TRANSACTION')
    try {
      const [rows] = await connection.query(`ANALYZE FORMAT=JSON ${inlined}`) as [Array<Record<string, string>>]
      statements.push({ sql: inlined, plan: JSON.parse(Object.values(rows[0]!)[0]!) })
    } finally {
      await connection.query(inTransaction ? 'ROLLBACK TO SAVEPOINT plan_check' : 'ROLLBACK')
    }
  }
  const wrap = <T extends object>(target: T, analyzeOn: (options: unknown, values: unknown) => Promise<void>, extra: Record<string | symbol, unknown> = {}): T =>
    new Proxy(target, {
      get (object, property) {
        if (property in extra) return extra[property]
        const value = Reflect.get(object, property)
        if (property === 'query' || property === 'execute') {
          return async (options: unknown, values?: unknown, ...rest: unknown[]) => {
            await analyzeOn(options, values)
            return (value as Run).call(object, options, values, ...rest)
          }
        }
        return typeof value === 'function' ? value.bind(object) : value
      },
    })
  const getConnection = async () => {
    const connection = await pool.getConnection()
    let inTransaction = false
    return wrap(connection, async (options, values) => {
      const text = sqlOf(options)
      if (/^\s*(begin|start transaction)/i.test(text)) inTransaction = true
      else if (/^\s*(commit|rollback)\s*$/i.test(text)) inTransaction = false
      else await analyze(connection as unknown as { query: Run }, inTransaction, options, values)
    })
  }
  return wrap(pool, (options, values) => analyze(analyzer as unknown as { query: Run }, false, options, values), { getConnection })
}

interface Problem { reason: string, table?: string }

/** Every table access in an ANALYZE FORMAT=JSON plan that breaks a rule. */
function problemsOf (plan: unknown): Problem[] {
  const problems: Problem[] = []
  const visit = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (node === null || typeof node !== 'object') return
    const object = node as Record<string, unknown>
    if ('filesort' in object || 'read_sorted_file' in object) problems.push({ reason: 'filesort' })
    if ('temporary_table' in object) problems.push({ reason: 'temporary table' })
    if ('block-nl-join' in object || 'buffer_type' in object) problems.push({ reason: 'join buffer' })
    const table = object.table as Record<string, unknown> | undefined
    // <derivedN> and <unionN,M> are the statement's own small lists (a batch's keys), not tables.
    if (table && typeof table.table_name === 'string' && !table.table_name.startsWith('<')) {
      const name = table.table_name
      if (table.access_type === 'ALL' || table.access_type === 'index') problems.push({ reason: `full ${table.access_type === 'ALL' ? 'table' : 'index'} scan`, table: name })
      const examined = Number(table.r_loops ?? 0) * Number(table.r_rows ?? 0)
      if (examined > MAX_ROWS_PER_ACCESS) problems.push({ reason: `${examined} rows examined (at most ${MAX_ROWS_PER_ACCESS})`, table: name })
    }
    Object.values(object).forEach(visit)
  }
  visit(plan)
  return problems
}

async function seedShape (url: string, shape: Shape) {
  const connection = await createConnection(url)
  await connection.query(`INSERT INTO users (email, name, password_hash, role) SELECT CONCAT('user', seq, '@plans.test'), CONCAT('User ', seq), 'x', IF(seq = 1, 'admin', 'user') FROM seq_1_to_${shape.users}`)
  await connection.query(`INSERT INTO boards (title, content, user_id) SELECT CONCAT('Board ', seq), 'Lorem ipsum dolor sit amet.', ${shape.authorOf} FROM seq_1_to_${BOARDS}`)
  // An audit log as a busy deployment has it: most events about user 1, spread over the last day
  // (half of them logins), and a backlog of sent outbox rows in front of the due ones.
  await connection.query(`INSERT INTO security_events (type, occurred_at, subject_user_id, details) SELECT IF(seq % 2 = 0, 'login.succeeded', IF(seq % 3 = 0, 'logout', 'user.updated')), NOW(3) - INTERVAL (${EVENTS} - seq) SECOND, IF(seq % 100 = 0, 2, 1), '{}' FROM seq_1_to_${EVENTS}`)
  await connection.query(`INSERT INTO outbox (kind, user_id, state, finished_at) SELECT 'email_verification', 1, 'sent', NOW(3) FROM seq_1_to_${EVENTS / 8}`)
  // Keys: many of user 1's, a few of user 2's.
  await connection.query("INSERT INTO api_keys (user_id, name, scopes, prefix, secret_hash, generation) SELECT IF(seq % 50 = 0, 2, 1), 'k', 'profile', LPAD(seq, 12, 'a'), REPEAT('0', 64), 0 FROM seq_1_to_5000")
  // A tiny blocklist: the shape on which an optimizer prefers a scan to an index.
  await connection.query("INSERT INTO token_blocklist (jti, kind, user_id, expires_at) SELECT UUID(), 'access', 1, NOW(3) + INTERVAL 1 DAY FROM seq_1_to_3")
  // The second factor: TOTP on for every user but user 2, ten recovery codes each, and a backlog
  // of expired challenges of user 1 in front of the live ones.
  await connection.query(`INSERT INTO totp_credentials (user_id, secret, enabled_at) SELECT seq, 'sealed', NOW(3) FROM seq_1_to_${shape.users} WHERE seq <> 2`)
  await connection.query(`INSERT INTO recovery_codes (user_id, code_hash) SELECT u.seq, SHA2(CONCAT(u.seq, '-', c.seq), 256) FROM seq_1_to_${shape.users} u, seq_1_to_10 c WHERE u.seq <> 2`)
  await connection.query(`INSERT INTO mfa_challenges (token_hash, user_id, session_generation, expires_at) SELECT SHA2(seq, 256), 1, 0, NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_${EVENTS / 8}`)
  // Sign in with a provider: an identity for every user (three for user 1), and backlogs of
  // expired sign-ins and exchange codes.
  await connection.query(`INSERT INTO federated_identities (user_id, provider, issuer, subject) SELECT seq, 'p', 'https://issuer.plans', CONCAT('sub-', seq) FROM seq_1_to_${shape.users}`)
  await connection.query("INSERT INTO federated_identities (user_id, provider, issuer, subject) VALUES (1, 'q', 'https://other.plans', 'one'), (1, 'r', 'https://third.plans', 'one')")
  await connection.query(`INSERT INTO oidc_logins (state_hash, provider, redirect_uri, callback_uri, nonce, code_verifier, expires_at) SELECT SHA2(CONCAT('l', seq), 256), 'p', 'r', 'c', 'n', 'v', NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_${EVENTS / 8}`)
  await connection.query(`INSERT INTO oidc_exchange_codes (code_hash, provider, issuer, subject, expires_at) SELECT SHA2(CONCAT('c', seq), 256), 'p', 'https://issuer.plans', CONCAT('sub-', seq), NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_${EVENTS / 8}`)
  // Passkeys: one for every user, 12 more for user 1, and a backlog of expired ceremony challenges.
  await connection.query(`INSERT INTO passkeys (user_id, credential_id, public_key, aaguid, user_handle, name) SELECT seq, CONCAT('cred-', seq), 'AA', '00000000-0000-0000-0000-000000000000', 'AA', 'p' FROM seq_1_to_${shape.users}`)
  await connection.query("INSERT INTO passkeys (user_id, credential_id, public_key, aaguid, user_handle, name) SELECT 1, CONCAT('one-', seq), 'AA', '00000000-0000-0000-0000-000000000000', 'AA', 'p' FROM seq_1_to_12")
  await connection.query(`INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, expires_at) SELECT SHA2(CONCAT('w', seq), 256), 'login', NULL, NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_${EVENTS / 8}`)
  await connection.end()
}

// Each run of the second-factor login (two a shape, each on its own database) uses a later step
// and another of user 1's recovery codes.
let mfaRun = 0

/** Each request-path use of the repositories, by name. */
/** `setup` runs statements that are not checked: putting the data back in shape between scenarios. */
function scenarios (repos: Repositories, shape: Shape, setup: Connection): Array<[string, () => Promise<unknown>]> {
  const middle = BOARDS / 2
  const list: Array<[string, () => Promise<unknown>]> = [
    ['token check, one token', () => repos.tokens.findTokenState(1, randomUUID(), randomUUID())],
    ['token check, three tokens in one batch', () => Promise.all([1, 2, 2].map((id) => repos.tokens.findTokenState(id, randomUUID(), randomUUID())))],
    ['board by id', () => repos.boards.findById(middle)],
    ['boards by id, three in one batch', () => Promise.all([1, middle, BOARDS].map((id) => repos.boards.findById(id)))],
    ['ownership check', () => repos.boards.findAuthorId(middle)],
    ['front page', () => repos.boards.list({ limit: PAGE })],
    ['deep page', () => repos.boards.list({ limit: PAGE, beforeId: middle })],
    ['last page', () => repos.boards.list({ limit: PAGE, beforeId: 10 })],
    ['two pages in one batch', () => Promise.all([repos.boards.list({ limit: PAGE }), repos.boards.list({ limit: PAGE, beforeId: middle })])],
    ['users, first page', () => repos.users.list({ limit: PAGE })],
    ['users, next page', () => repos.users.list({ limit: PAGE, afterId: 1 })],
    ['user by id', () => repos.users.findById(2)],
    ['user exists', () => repos.users.exists(2)],
    ['credentials by email', () => repos.users.findCredentials({ email: 'user2@plans.test' })],
    ['create, edit and delete a board', async () => {
      const board = await repos.boards.create({ title: 'new', content: 'new', user_id: 2 })
      await repos.boards.update(board.id, { title: 'edited' })
      await repos.boards.delete(board.id)
    }],
    ['edit a user', () => repos.users.update(2, { name: 'Renamed' }, NO_CONTEXT)],
    ['demote the last admin (refused)', () => repos.users.update(1, { role: 'user' }, NO_CONTEXT).catch(() => {})],
    ['log in, refresh, list and end sessions', async () => {
      const id = randomUUID()
      const now = new Date()
      const expires_at = new Date(Date.now() + 60_000)
      await repos.sessions.start({ id, user_id: 2, created_at: now, expires_at, user_agent: 'plans', ip: '127.0.0.1', generation: 0, amr: ['pwd'] }, NO_CONTEXT)
      await repos.sessions.rotate({ jti: randomUUID(), user_id: 2, expires_at }, id, { at: now, expires_at, user_agent: 'plans', ip: '127.0.0.1' })
      await repos.sessions.list(2, { limit: PAGE })
      await repos.sessions.list(2, { limit: PAGE, after: { lastUsedAt: now, id } })
      await repos.sessions.end(2, id, NO_CONTEXT)
      await repos.sessions.endById(randomUUID(), { type: 'logout', subject_user_id: 2, context: NO_CONTEXT })
    }],
    ['end other sessions', () => repos.users.endSessions(2, randomUUID(), NO_CONTEXT)],
    ['change a password', () => repos.users.changePassword(2, 'y', { checkedHash: 'x', keptSessionId: randomUUID(), context: NO_CONTEXT })],
    ['user by email (password forgotten)', () => repos.users.findByEmail('user2@plans.test')],
    ['password reset: issue, check and spend a token', async () => {
      const token = await repos.oneTimeTokens.issue({ purpose: 'password_reset', userId: 2, email: 'user2@plans.test', ttl: 60_000, maxPerHour: 1000 })
      const live = await repos.oneTimeTokens.find('password_reset', token!)
      await repos.oneTimeTokens.resetPassword(live!, 'x', NO_CONTEXT)
    }],
    ['email verification: issue, check and spend a token', async () => {
      const token = await repos.oneTimeTokens.issue({ purpose: 'email_verification', userId: 2, email: 'user2@plans.test', ttl: 60_000, maxPerHour: 1000 })
      await repos.oneTimeTokens.verifyEmail((await repos.oneTimeTokens.find('email_verification', token!))!, NO_CONTEXT)
    }],
    ['a user\'s events, first and next page, of one type', async () => {
      await repos.events.list({ userId: 2 }, PAGE)
      await repos.events.list({ userId: 2, beforeId: EVENTS / 2 }, PAGE)
      await repos.events.list({ userId: 2, type: 'login.succeeded' }, PAGE)
    }],
    ['every event, by type, since a time (admin)', async () => {
      await repos.events.list({}, PAGE)
      await repos.events.list({ type: 'logout', beforeId: EVENTS / 2 }, PAGE)
      await repos.events.list({ since: new Date(Date.now() - 3_600_000) }, PAGE)
      await repos.events.list({ since: new Date(Date.now() - 3_600_000), userId: 1, type: 'login.succeeded' }, PAGE)
    }],
    ['a failed login, counted', () => repos.events.loginFailed('user2@plans.test', NO_CONTEXT, 'wrong_password')],
    ['turn TOTP on, replace the recovery codes, turn it off', async () => {
      const codes = Array.from({ length: 10 }, (_, i) => createHash('sha256').update(`plans-${i}`).digest('hex'))
      const sid = randomUUID()
      await repos.mfa.beginTotpSetup(2, 'sealed-by-plans')
      await repos.mfa.findTotp(2)
      await repos.mfa.enableTotp(2, { sealedSecret: 'sealed-by-plans', step: 1 }, codes, sid, NO_CONTEXT)
      await repos.mfa.replaceRecoveryCodes(2, codes, sid, NO_CONTEXT)
      await repos.mfa.disableTotp(2, sid, NO_CONTEXT)
    }],
    ['a login with a second factor: challenge, a wrong code, a right one, a recovery code', async () => {
      const run = ++mfaRun
      const session = () => ({ id: randomUUID(), user_id: 1, created_at: new Date(), expires_at: new Date(Date.now() + 60_000), user_agent: 'plans', ip: '127.0.0.1' })
      const challengeOf = async () => {
        const account = await repos.users.findCredentials({ email: 'user1@plans.test' })
        return (await repos.mfa.findChallenge(await repos.mfa.startChallenge(1, account!.session_generation)))!
      }
      const challenge = await challengeOf()
      // Each path is taken for real: a scenario that went another way would check other statements.
      const expect = async (outcome: Promise<{ result: string }>, result: string) => {
        const got = (await outcome).result
        if (got !== result) throw new Error(`expected ${result}, got ${got}`)
      }
      await expect(repos.mfa.finishChallenge(challenge, { method: 'totp', step: null }, session(), NO_CONTEXT), 'wrong_code')
      await expect(repos.mfa.finishChallenge(challenge, { method: 'totp', step: 60_000_000 + run }, session(), NO_CONTEXT), 'signed_in')
      const codeHash = createHash('sha256').update(`1-${run}`).digest('hex')
      await expect(repos.mfa.finishChallenge(await challengeOf(), { method: 'recovery_code', codeHash }, session(), NO_CONTEXT), 'signed_in')
    }],
    ['an API key: made, checked on a request, listed, read and revoked', async () => {
      // User 1: the scenarios above cut user 2's sessions off, and with them the keys seeded for
      // user 2, which a list then skips (bounded by how many keys one person makes). The recovery
      // code above ended user 1's other sessions too; its seeded keys are put back at the user's
      // generation, unchecked, so that the list walks live keys.
      await setup.query('UPDATE api_keys k JOIN users u ON u.id = k.user_id SET k.generation = u.session_generation WHERE k.user_id = 1')
      const key = await repos.apiKeys.create(1, { name: 'plans', scopes: ['profile'], expiresAt: null }, NO_CONTEXT)
      await repos.apiKeys.check(key.token)
      await repos.apiKeys.check(`bk_${'a'.repeat(12)}_${'A'.repeat(43)}`)
      await repos.apiKeys.list(1, { limit: PAGE })
      await repos.apiKeys.list(1, { limit: PAGE, beforeId: 2500 })
      await repos.apiKeys.find(1, key.id)
      await repos.apiKeys.revoke(1, key.id, NO_CONTEXT)
    }],
    ['sign in with a provider: start, callback, exchange (a new account, then a linked one)', async () => {
      const run = randomUUID()
      await repos.identities.startLogin({ state: run, provider: 'p', redirectUri: 'r', callbackUri: 'c', nonce: 'n', codeVerifier: 'v', linkUserId: null })
      await repos.identities.spendLogin(run)
      const identity = { provider: 'p', issuer: 'https://issuer.plans', subject: `new-${run}`, email: `${run}@plans.test`, emailVerified: true, name: null }
      await repos.identities.checkSignIn(identity)
      await repos.identities.checkSignIn({ ...identity, subject: 'sub-2' })
      await repos.identities.checkSignIn({ ...identity, email: 'user2@plans.test', emailVerified: false })
      const session = () => ({ id: randomUUID(), created_at: new Date(), expires_at: new Date(Date.now() + 60_000), user_agent: 'plans', ip: '127.0.0.1' })
      for (const who of [identity, { ...identity, subject: 'sub-2' }, { ...identity, subject: `other-${run}`, email: 'user2@plans.test', emailVerified: false }]) {
        const outcome = await repos.identities.exchange(await repos.identities.issueExchangeCode(who), session(), NO_CONTEXT)
        if (outcome.result === 'invalid_code') throw new Error('the exchange code did not work')
      }
    }],
    ['a user\'s identities: link, list, unlink', async () => {
      await repos.identities.link(2, { provider: 'q', issuer: 'https://other.plans', subject: `two-${randomUUID()}`, email: null, emailVerified: false, name: null }, NO_CONTEXT)
      const [identity] = await repos.identities.list(2)
      await repos.identities.list(1)
      await repos.identities.unlink(2, identity!.id, NO_CONTEXT)
    }],
    ['passkeys: a ceremony\'s challenge, added, listed, renamed, a sign-in, removed', async () => {
      const run = randomUUID()
      const challenge = createHash('sha256').update(run).digest('hex')
      await repos.passkeys.saveChallenge(challenge, 'register', 2)
      if (!await repos.passkeys.takeChallenge(challenge, 'register')) throw new Error('the challenge was not taken')
      const added = await repos.passkeys.add(2, { credentialId: `new-${run}`, publicKey: 'AA', counter: 0, transports: ['internal'], backupEligible: false,
        backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000', userHandle: 'AA', name: 'plans' }, randomUUID(), NO_CONTEXT)
      if (typeof added !== 'object') throw new Error(`not added: ${added}`)
      await repos.passkeys.list(2)
      await repos.passkeys.credentialsOf(1)
      await repos.passkeys.rename(2, added.id, 'renamed')
      const owner = await repos.passkeys.findByCredentialId(`new-${run}`)
      const session = { id: randomUUID(), user_id: 2, created_at: new Date(), expires_at: new Date(Date.now() + 60_000), user_agent: 'plans', ip: '127.0.0.1', amr: ['hwk'] }
      if (!await repos.passkeys.signIn(owner!, 5, session, NO_CONTEXT)) throw new Error('the sign-in did not pass')
      if (await repos.passkeys.remove(2, added.id, randomUUID(), NO_CONTEXT) !== 'removed') throw new Error('not removed')
    }],
    ['the outbox: a mail queued, claimed and sent', async () => {
      await repos.oneTimeTokens.requestMail('password_reset', 2, NO_CONTEXT)
      const [row] = await repos.outbox.claimDue('plans', 10, 60_000)
      if (row) await repos.outbox.finish(row, 'sent')
    }],
  ]
  for (const author of shape.authors) {
    list.push([`page of ${author.name}`, () => repos.boards.list({ limit: PAGE, authorId: author.id })])
    list.push([`deep page of ${author.name}`, () => repos.boards.list({ limit: PAGE, authorId: author.id, beforeId: middle })])
  }
  return list
}

async function checkPlans (t: Test, repos: Repositories, statements: Statement[], shape: Shape, setup: Connection) {
  for (const [name, run] of scenarios(repos, shape, setup)) {
    statements.length = 0
    await run()
    t.ok(statements.length > 0, `${name}: ran at least one statement`)
    for (const statement of statements) {
      const problems = problemsOf(statement.plan)
      t.same(problems, [], `${name}: ${statement.sql.slice(0, 100)}…`, problems.length ? { sql: statement.sql, plan: statement.plan } : {})
    }
  }
}

for (const shape of SHAPES) {
  t.test(`every request-path statement walks an index on: ${shape.name}`, async (t) => {
    const url = await createTestDatabase(t)
    await seedShape(url, shape)
    const config = testConfig({ DATABASE_URL: url })
    const pool = createDatabasePool(config)
    const analyzer = await createConnection({ uri: url, timezone: 'Z' })
    t.teardown(async () => { await analyzer.end(); await pool.end() })
    const statements: Statement[] = []
    const recording = recordingPool(pool, analyzer, statements)
    const repos = createRepositories(createDatabase(recording), recording)

    await t.test('as loaded', (t) => checkPlans(t, repos, statements, shape, analyzer))
    await analyzer.query('ANALYZE TABLE users, boards, token_blocklist, sessions, one_time_tokens, security_events, outbox, api_keys, totp_credentials, recovery_codes, mfa_challenges, passkeys, webauthn_challenges')
    await t.test('after ANALYZE TABLE', (t) => checkPlans(t, repos, statements, shape, analyzer))
  })
}

t.test('the checker finds what it looks for', async (t) => {
  // The rules must be able to fail: run statements that break each one through the same checker.
  const url = await createTestDatabase(t)
  await seedShape(url, SHAPES[0]!)
  const connection = await createConnection(url)
  t.teardown(() => connection.end())
  const planOf = async (sql: string) => {
    const [rows] = await connection.query(`ANALYZE FORMAT=JSON ${sql}`) as unknown as [Array<Record<string, string>>]
    return JSON.parse(Object.values(rows[0]!)[0]!)
  }
  const reasons = async (sql: string) => problemsOf(await planOf(sql)).map((problem) => problem.reason.replace(/^\d+ rows examined.*/, 'rows examined'))
  t.ok((await reasons('SELECT id FROM boards ORDER BY title LIMIT 20')).includes('filesort'), 'a filesort')
  t.ok((await reasons('SELECT user_id, COUNT(*) FROM boards GROUP BY title LIMIT 5')).includes('temporary table'), 'a temporary table')
  t.ok((await reasons('SELECT a.id FROM users a JOIN users b ON b.name = a.name')).includes('join buffer'), 'a join buffer')
  t.ok((await reasons('SELECT COUNT(*) FROM users IGNORE INDEX (PRIMARY, users_email_unique) WHERE name <> \'\'')).includes('full table scan'), 'a full table scan')
  t.ok((await reasons('SELECT id FROM boards WHERE user_id = 1 AND id < 100000 LIMIT 100')).includes('rows examined'), 'more rows than a page')
  t.same(await reasons('SELECT id FROM boards FORCE INDEX (PRIMARY) WHERE id < 100000 ORDER BY id DESC LIMIT 21'), [], 'and nothing on a page walked by the index')
})
