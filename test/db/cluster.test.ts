import { createConnection, type RowDataPacket } from 'mysql2/promise'
import t from 'tap'
import { ConfigError, databaseUrls } from '../../src/config.js'
import { prepareDatabase } from '../../src/db/prepare.js'
import { bearer, build, createTestDatabase, freePort, registerAndLogin, testConfig } from '../helper.js'
import { startTcpProxy } from '../ops/tcp-proxy.js'

// API.md §11 on a single server: DATABASE_URL may name several hosts, each tried in turn; the
// migration lock holds across servers (a row, not GET_LOCK). The same code against a real
// Galera cluster runs in `npm run test:cluster`.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('DATABASE_URL with several hosts is one URL per host, credentials and options kept', async (t) => {
  t.same(databaseUrls('mysql://u:p@10.0.0.1:4306, 10.0.0.2:4307/app?ssl=true'), [
    'mysql://u:p@10.0.0.1:4306/app?ssl=true', 'mysql://u:p@10.0.0.2:4307/app?ssl=true'])
  t.same(databaseUrls('mysql://root@127.0.0.1:3306/boardkit'), ['mysql://root@127.0.0.1:3306/boardkit'])
  t.throws(() => testConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306,:x/boardkit' }), ConfigError, 'an empty host is refused at start')
  t.throws(() => testConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306,127.0.0.1:99999/boardkit' }), ConfigError, 'a bad port too')
})

t.test('a host that refuses connections is skipped: requests are served by the next one', async (t) => {
  const database = new URL(await createTestDatabase(t)).pathname
  const dead = await freePort()
  const app = await build(t, { DATABASE_URL: `mysql://root@127.0.0.1:${dead},127.0.0.1:3306${database}` })
  const session = await registerAndLogin(app)
  const me = await app.inject({ url: '/me', headers: bearer(session.access_token) })
  t.equal(me.statusCode, 200, 'register, login and /me all answered')
  t.equal((await app.inject({ url: '/ready' })).statusCode, 200, '/ready is 200 while one host answers')
})

t.test('a host lost mid-run: at most a brief 503, then the next host; back first once it returns', async (t) => {
  const proxy = await startTcpProxy({ port: 3306 })
  t.teardown(() => proxy.close())
  const database = new URL(await createTestDatabase(t)).pathname
  const app = await build(t, { DATABASE_URL: `mysql://root@127.0.0.1:${proxy.port},127.0.0.1:3306${database}` })
  const session = await registerAndLogin(app)
  t.ok(proxy.accepted > 0, 'the first host is used while it answers')

  proxy.cut()
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await app.inject({ url: '/me', headers: bearer(session.access_token) })).statusCode)
  t.ok(statuses.every((status) => status === 200 || status === 503), `only 200s and 503s (${statuses.join(' ')})`)
  t.same(statuses.slice(-5), [200, 200, 200, 200, 200], 'the last requests are served by the second host')

  await proxy.restore()
  const before = proxy.accepted
  await sleep(2500)
  // New connections go to the first host again; the pool opens one when its idle ones are busy.
  await Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/me', headers: bearer(session.access_token) })))
  t.ok(proxy.accepted > before, 'the first host is tried again after it returns')
})

t.test('a plain server keeps wsrep_sync_wait at 0: the causality wait is only for Galera nodes', async (t) => {
  const app = await build(t)
  const [rows] = await app.pool.query<RowDataPacket[]>('SELECT @@wsrep_on AS wsrep_on, @@wsrep_sync_wait AS sync_wait')
  t.same(rows[0], { wsrep_on: 0, sync_wait: 0 })
})

t.test('the migration lock is a row: a held lock makes a start wait, a stale one is broken', async (t) => {
  const url = await createTestDatabase(t)
  const connection = await createConnection(url)
  t.teardown(() => connection.end())

  await connection.query("INSERT INTO boardkit_migration_lock (id, holder, taken_at) VALUES (1, 'other', UTC_TIMESTAMP(3))")
  let done = false
  const starting = prepareDatabase(testConfig({ DATABASE_URL: url })).then(() => { done = true })
  await sleep(800)
  t.notOk(done, 'a start waits while another instance holds the lock')
  await connection.query('DELETE FROM boardkit_migration_lock WHERE id = 1')
  await starting
  t.ok(done, 'and migrates once it is released')

  await connection.query("INSERT INTO boardkit_migration_lock (id, holder, taken_at) VALUES (1, 'dead', UTC_TIMESTAMP(3) - INTERVAL 1 HOUR)")
  await prepareDatabase(testConfig({ DATABASE_URL: url }))
  const [rows] = await connection.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM boardkit_migration_lock')
  t.equal(rows[0]!.n, 0, 'a lock left by an instance that died is broken, and the new holder releases it')
})

t.test('instances starting together migrate once', async (t) => {
  const url = await createTestDatabase(t)
  const fresh = url.replace(/boardkit_t_\w+/, (name) => `${name}_x`)
  t.teardown(async () => {
    const connection = await createConnection(url)
    await connection.query(`DROP DATABASE IF EXISTS \`${new URL(fresh).pathname.slice(1)}\``)
    await connection.end()
  })
  await Promise.all(Array.from({ length: 4 }, () => prepareDatabase(testConfig({ DATABASE_URL: fresh }))))
  const connection = await createConnection(fresh)
  const [rows] = await connection.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM __drizzle_migrations')
  const [files] = await connection.query<RowDataPacket[]>('SELECT COUNT(DISTINCT hash) AS n FROM __drizzle_migrations')
  await connection.end()
  t.equal(rows[0]!.n, files[0]!.n, 'each migration is recorded once')
})
