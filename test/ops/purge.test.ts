import { randomUUID } from 'node:crypto'
import { createConnection } from 'mysql2/promise'
import t from 'tap'
import { build, createTestDatabase } from '../helper.js'

// The purge timer (src/plugins/purge.ts) deletes expired blocklist rows by itself, and only those.
t.test('every BLOCKLIST_PURGE_INTERVAL, expired blocklist rows go and live ones stay', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const connection = await createConnection(DATABASE_URL)
  t.teardown(() => connection.end())
  const [expired, live] = [randomUUID(), randomUUID()]
  await connection.query(
    `INSERT INTO token_blocklist (jti, kind, user_id, expires_at) VALUES
       (?, 'access', 1, NOW(3) - INTERVAL 1 MINUTE), (?, 'access', 1, NOW(3) + INTERVAL 1 HOUR)`, [expired, live])

  await build(t, { DATABASE_URL, BLOCKLIST_PURGE_INTERVAL: '50ms' })
  const remaining = async () => {
    const [rows] = await connection.query('SELECT jti FROM token_blocklist')
    return (rows as Array<{ jti: string }>).map((row) => row.jti)
  }
  const deadline = Date.now() + 30_000
  while ((await remaining()).includes(expired) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(await remaining(), [live], 'the expired row is gone, the live one is there')
})
