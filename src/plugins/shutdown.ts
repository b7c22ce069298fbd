import { Server as NetServer, type Socket } from 'node:net'
import fp from 'fastify-plugin'
import { AppError } from '../errors.js'

/** A keep-alive connection idle this long after shutdown began is closed by us. */
const IDLE_DRAIN_MS = 1000
/** Past this, shutdown goes on regardless (close-with-grace in server.ts kills at 10 s). */
const DRAIN_LIMIT_MS = 8000
const POLL_MS = 25

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Graceful shutdown without resets.
 *
 * Node's http server.close() (which app.close() calls) also closes every keep-alive connection
 * that is idle at that instant. A client that is sending its next request on such a connection
 * at that instant gets ECONNRESET and cannot tell whether its write happened. So before
 * Fastify closes the server (preClose):
 * - the listener stops accepting, without touching open connections: a new connection is then
 *   refused, which a client knows was never served;
 * - every response from then on says `Connection: close`, in-flight ones included, so a client
 *   closes its connection after the answer instead of reusing it;
 * - a request that still arrives on an open connection gets 503 with `Connection: close`;
 * - a connection is closed by us only once it has been idle for IDLE_DRAIN_MS: time for a
 *   client about to reuse it to do so and be answered.
 */
export default fp(async (app) => {
  let closing = false
  const sockets = new Map<Socket, { busy: number, idleSince: number }>()

  app.server.on('connection', (socket: Socket) => {
    sockets.set(socket, { busy: 0, idleSince: Date.now() })
    socket.once('close', () => sockets.delete(socket))
  })
  app.server.on('request', (request, response) => {
    const state = sockets.get(request.socket)
    if (!state) return
    state.busy += 1
    response.once('close', () => {
      state.busy -= 1
      state.idleSince = Date.now()
    })
  })

  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    reply.header('connection', 'close')
    throw new AppError(503, 'service_unavailable', 'The server is shutting down; retry shortly')
  })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })

  app.addHook('preClose', async () => {
    closing = true
    const startedAt = Date.now()
    // net.Server's close, not http.Server's: stop accepting but leave open connections alone.
    // Fastify calls http's close afterwards, which then finds nothing left to cut.
    if (app.server.listening) NetServer.prototype.close.call(app.server)
    while (sockets.size > 0 && Date.now() - startedAt < DRAIN_LIMIT_MS) {
      const now = Date.now()
      for (const [socket, state] of sockets) {
        if (state.busy === 0 && now - Math.max(state.idleSince, startedAt) >= IDLE_DRAIN_MS) socket.destroy()
      }
      await sleep(POLL_MS)
    }
  })
}, { name: 'shutdown', dependencies: ['errors'] })
