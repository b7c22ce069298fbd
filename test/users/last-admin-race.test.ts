import t from 'tap'
import { build } from '../helper.js'
import { NO_CONTEXT } from '../../src/repositories/events.js'

// The last-admin check locks admins through the users(role) index. Under REPEATABLE READ that
// locking read also locked the index's gaps, and two admins demoting themselves at once
// deadlocked in 195 of 200 tries (the loser got a 503): the role change inserts into the gap
// the other transaction was waiting to lock. The check's transactions now run READ COMMITTED.
t.test('two admins demoting themselves at once: one wins, the other is the last admin, never a deadlock', async (t) => {
  const app = await build(t)
  const users = app.repos.users
  const failures = new Map<string, number>()
  for (let round = 0; round < 50; round++) {
    const [a, b] = await Promise.all(['a', 'b'].map((name) =>
      users.create({ email: `${name}${round}@race.test`, name, password_hash: 'x', role: 'admin' }, NO_CONTEXT)))
    const outcomes = await Promise.allSettled([a!, b!].map((admin) => users.update(admin.id, { role: 'user' }, NO_CONTEXT)))
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue
      const error = outcome.reason as { code?: string, cause?: { code?: string } }
      const code = error.code ?? error.cause?.code ?? String(error)
      failures.set(code, (failures.get(code) ?? 0) + 1)
    }
    t.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1, `round ${round + 1}: exactly one demotion succeeds`)
    // Leave no admin behind for the next round's pair.
    await app.pool.query("UPDATE users SET role = 'user' WHERE role = 'admin'")
  }
  t.same(Object.fromEntries(failures), { last_admin: 50 }, 'every loser is refused as the last admin')
})
