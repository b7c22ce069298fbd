import t from 'tap'
import { bearer, build, registerAndLogin } from '../helper.js'

// A request still waiting for a database connection when the pool closes (the server is
// shutting down and its client has already gone) gets our 503, not a 500 and an error log.

t.test('a request queued for a connection when the pool closes is a 503', async (t) => {
  const app = await build(t, { DB_POOL_SIZE: '1' })
  const session = await registerAndLogin(app)
  // Take the only connection, so the next query waits in the pool's queue.
  const held = await app.pool.getConnection()
  const pending = app.inject({ method: 'GET', url: '/me', headers: bearer(session.access_token) })
  await new Promise((resolve) => setTimeout(resolve, 50))
  // What app.close() does last (the db plugin's onClose), while the request still waits.
  const closing = app.pool.end()
  held.release()
  await closing
  const response = await pending
  t.equal(response.statusCode, 503, 'service unavailable', { body: response.body })
  t.equal(response.json().code, 'service_unavailable')
})
