import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'

/**
 * Reads and throws away the rest of a request body, up to `maxBytes` more bytes and `maxMs`.
 * Resolves once the body has ended, the socket has closed, or a bound was hit.
 */
function discardBody (raw: IncomingMessage, maxBytes: number, maxMs: number): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    let discarded = 0
    const finish = () => {
      clearTimeout(timer)
      raw.off('data', onData).off('end', finish).off('close', finish)
      resolve()
    }
    const onData = (chunk: Buffer) => {
      discarded += chunk.length
      if (discarded > maxBytes) finish()
    }
    const timer = setTimeout(finish, maxMs)
    raw.on('data', onData).once('end', finish).once('close', finish)
    raw.resume()
  })
}

/**
 * A 413 that clients still sending can read.
 *
 * Fastify answers an oversized body as soon as it knows (from Content-Length, or once the limit
 * is passed) with `Connection: close`, and Node then closes the socket with the rest of the
 * body unread. The kernel answers the client's next bytes with a reset, so Node's `fetch` and
 * `http` clients, which send the whole body before they read, failed with EPIPE in 4 of 5
 * tries and never saw the 413. As reverse proxies do (nginx's lingering close), the rest of the
 * body is read and thrown away first, within BODY_DISCARD_LIMIT bytes and BODY_DISCARD_TIMEOUT,
 * so the connection cannot be held open for free. Past either bound the connection is closed
 * as before.
 */
export default fp(async (app) => {
  const { BODY_DISCARD_LIMIT, BODY_DISCARD_TIMEOUT } = app.config
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode === 413 && BODY_DISCARD_LIMIT > 0) {
      await discardBody(request.raw, BODY_DISCARD_LIMIT, BODY_DISCARD_TIMEOUT)
    }
  })
}, { name: 'body-limit', dependencies: ['config'] })
