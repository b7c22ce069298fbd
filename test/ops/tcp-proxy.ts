import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 in front of the test database, to simulate network outages
 * without touching the real server:
 *
 * - `cut()`: every open client/upstream pair is destroyed, and new connections are accepted
 *   but never forwarded nor answered (a blackhole: the client waits for the handshake that
 *   never comes, the harder case for a driver).
 * - `silence()`: nothing is closed, nothing is forwarded: open pairs stop carrying bytes in
 *   either direction, and new connections are accepted and held (what a network partition or a
 *   frozen database host looks like; a statement already sent gets no answer).
 *   `silence('open')` silences the open pairs only and forwards new connections (a NAT or
 *   firewall that forgot idle connections).
 * - `refuse()`: every open pair is destroyed and the listener is closed, so new connections
 *   are refused (ECONNREFUSED), as when the database process is down.
 * - `restore()`: forwards normally again, re-listening on the same port if needed; silenced
 *   pairs carry on with whatever was sent meanwhile, as after a healed partition.
 * - `close()`: tears everything down for good.
 */
export interface TcpProxy {
  readonly port: number
  /** How many client connections the proxy has accepted in total (forwarded or held). */
  readonly accepted: number
  cut (): void
  silence (scope?: 'all' | 'open'): void
  refuse (): Promise<void>
  restore (): Promise<void>
  close (): Promise<void>
}

type Mode = 'forward' | 'blackhole' | 'silent' | 'refused' | 'closed'

export async function startTcpProxy (target: { host?: string, port?: number } = {}): Promise<TcpProxy> {
  const targetHost = target.host ?? '127.0.0.1'
  const targetPort = target.port ?? 3306
  if (targetHost !== '127.0.0.1') throw new Error('the proxy only forwards to 127.0.0.1')

  let mode: Mode = 'forward'
  let accepted = 0
  const pairs = new Set<{ client: Socket, upstream: Socket }>()
  const silenced = new Set<{ client: Socket, upstream: Socket }>()
  const held = new Set<Socket>()

  const onConnection = (client: Socket) => {
    accepted += 1
    client.on('error', () => {})
    if (mode !== 'forward') {
      // Blackhole: keep the socket open, read nothing out of it, write nothing into it.
      client.pause()
      held.add(client)
      client.once('close', () => held.delete(client))
      return
    }
    const upstream = connect({ host: targetHost, port: targetPort })
    upstream.on('error', () => {})
    const pair = { client, upstream }
    pairs.add(pair)
    const drop = () => {
      pairs.delete(pair)
      silenced.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.once('close', drop)
    upstream.once('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  }

  let server: Server = createServer(onConnection)
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  await listen(0)
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('the proxy has no port')
  const port = address.port

  const destroyAll = () => {
    for (const { client, upstream } of pairs) {
      client.destroy()
      upstream.destroy()
    }
    pairs.clear()
    silenced.clear()
    for (const socket of held) socket.destroy()
    held.clear()
  }

  const closeListener = async () => {
    if (!server.listening) return
    // close() waits for every accepted socket to end; they have all been destroyed by now.
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return {
    port,
    get accepted () { return accepted },

    cut () {
      if (mode === 'closed') throw new Error('the proxy is closed')
      mode = 'blackhole'
      destroyAll()
    },

    silence (scope = 'all') {
      if (mode === 'closed') throw new Error('the proxy is closed')
      if (scope === 'all') mode = 'silent'
      for (const pair of pairs) {
        if (silenced.has(pair)) continue
        pair.client.unpipe(pair.upstream)
        pair.upstream.unpipe(pair.client)
        pair.client.pause()
        pair.upstream.pause()
        silenced.add(pair)
      }
    },

    async refuse () {
      if (mode === 'closed') throw new Error('the proxy is closed')
      mode = 'refused'
      destroyAll()
      await closeListener()
    },

    async restore () {
      if (mode === 'closed') throw new Error('the proxy is closed')
      // Connections held in the blackhole are stale: their clients gave up on them.
      for (const socket of held) socket.destroy()
      held.clear()
      for (const pair of silenced) {
        pair.client.pipe(pair.upstream)
        pair.upstream.pipe(pair.client)
      }
      silenced.clear()
      mode = 'forward'
      if (!server.listening) {
        server = createServer(onConnection)
        await listen(port)
      }
    },

    async close () {
      mode = 'closed'
      destroyAll()
      await closeListener()
    },
  }
}
