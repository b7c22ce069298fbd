import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { build, freePort, registerAndLogin } from '../helper.js'
import { startMailServer, tokenOfLink } from '../mail-server.js'

// A mail server that is down or slow never fails or slows a request (API.md §10); the mail is
// retried until the server is back, and pending mail never outlives the app.

const APP_URL = 'http://127.0.0.1:3000'

t.test('SMTP down: the request is still 202, and the mail arrives once the server is back', async (t) => {
  const port = await freePort()
  const smtp = await startMailServer(t, { port, listening: false })
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL, OUTBOX_RETRY_BASE: '200ms' })
  const me = await registerAndLogin(app)

  const answer = await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: me.user.email } })
  t.equal(answer.statusCode, 202, 'accepted while nothing listens on the SMTP port')
  t.same(answer.json(), { status: 'accepted' })

  // Let the first attempts fail against the closed port, then bring the server up.
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(smtp.mails.length, 0, 'nothing could arrive yet')
  await smtp.listen()
  const mail = await smtp.waitForMail((m) => m.to.includes(me.user.email) && /reset/i.test(m.subject), 20_000)
  const token = tokenOfLink(mail.text, APP_URL, '/reset-password')
  t.ok(token, 'the retried mail has its link')
  t.equal((await app.inject({ method: 'POST', url: '/password/reset', payload: { token, new_password: 'after the outage' } })).statusCode, 204,
    'and the link works')
  await app.outbox.idle()
  t.equal(smtp.mails.filter((m) => /reset/i.test(m.subject)).length, 1, 'sent once, not once per attempt')
})

t.test('a mail server that accepts connections and never answers does not hold the request', async (t) => {
  // A TCP server that takes the connection and says nothing: nodemailer waits for the greeting.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => silent.close(() => resolve()))
  })
  const { port } = silent.address() as { port: number }
  const app = await build(t, { SMTP_URL: `smtp://127.0.0.1:${port}`, APP_URL })
  const me = await registerAndLogin(app)

  const answer = await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: me.user.email } })
  t.equal(answer.statusCode, 202, 'answered while the mail server stays silent')
  // The mail work has started: wait until a connection to the silent server is open.
  for (let i = 0; i < 100 && sockets.size === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(sockets.size > 0, 'the delivery is under way (connected, waiting for a greeting)')

  // Closing the app aborts the stuck delivery instead of waiting out nodemailer's timeouts; if
  // it did not, this close would hang past the test's timeout.
  // (A liveness bound, far above the milliseconds this takes, and far below nodemailer's timeouts.)
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    app.close().then(() => 'closed'),
    new Promise((resolve) => { timer = setTimeout(resolve, 5000, 'still open') }),
  ])
  clearTimeout(timer)
  t.equal(result, 'closed', 'app.close() returns with a delivery under way')
})

t.test('a mail that keeps failing is given up after MAIL_RETRY_FOR, not retried forever', async (t) => {
  const port = await freePort()
  const smtp = await startMailServer(t, { port, listening: false })
  const app = await build(t, { SMTP_URL: smtp.url, APP_URL, OUTBOX_RETRY_BASE: '50ms', MAIL_RETRY_FOR: '1s', OUTBOX_POLL_INTERVAL: '50ms' })
  const me = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: me.user.email } })).statusCode, 202)
  const states = async () => (await app.pool.query("SELECT kind, state, attempts, last_error FROM outbox WHERE kind = 'password_reset'"))[0] as Array<{ state: string, attempts: number, last_error: string }>
  for (let i = 0; i < 100 && (await states())[0]?.state !== 'dead'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const [row] = await states()
  t.equal(row?.state, 'dead', 'given up')
  t.ok(row!.attempts > 2, `after several attempts (${row!.attempts})`)
  t.match(row?.last_error, /^E[A-Z]+$/, 'with the reason: an error code, no message text')
  await smtp.listen()
  await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: me.user.email } })
  await app.outbox.idle()
  t.same(smtp.mails.filter((m) => /reset/i.test(m.subject)).length, 1, 'only the mail asked for after the server came back arrives')
})
