import type { AddressInfo } from 'node:net'
import t from 'tap'
import { rotateSigningKey } from '../../src/plugins/auth/keys.js'
import { build, registerAndLogin } from '../helper.js'

// API.md §9: rotating keys costs valid tokens nothing. Bench-style traffic over a real socket on
// 127.0.0.1 (bounded: 8 connections for a few seconds) while keys rotate twice and new logins
// pick up each new key; every request with a valid token must succeed.

const WORKERS = 8
const DURATION_MS = 7000

t.test('two rotations under load: zero 401s for valid tokens', async (t) => {
  const app = await build(t, { JWT_ALGORITHM: 'EdDSA', JWT_KEY_ACTIVATION_DELAY: '1s' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const tokens: string[] = []
  for (let i = 0; i < 4; i++) tokens.push((await registerAndLogin(app)).access_token)

  const statuses = new Map<number, number>()
  const kids = new Set<string>()
  const stopAt = Date.now() + DURATION_MS
  let requests = 0

  async function worker (n: number) {
    while (Date.now() < stopAt) {
      const token = tokens[(requests + n) % tokens.length]!
      const response = await fetch(`http://127.0.0.1:${port}/me`, { headers: { authorization: `Bearer ${token}` } })
      await response.arrayBuffer()
      requests += 1
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
    }
  }

  /** Rotates, then keeps logging in (as a client would) so tokens of every key join the traffic. */
  async function rotations () {
    for (const pause of [500, 2500]) {
      await new Promise((resolve) => setTimeout(resolve, pause))
      await rotateSigningKey(app.repos.signingKeys, app.config)
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 700))
        const session = await registerAndLogin(app)
        kids.add(JSON.parse(Buffer.from(session.access_token.split('.')[0]!, 'base64url').toString()).kid)
        tokens.push(session.access_token)
      }
    }
  }

  await Promise.all([rotations(), ...Array.from({ length: WORKERS }, (_, n) => worker(n))])
  t.comment(`${requests} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, kids seen in new tokens: ${kids.size}`)
  t.ok(requests > 50, 'the load ran')
  t.ok(kids.size >= 2, 'new logins were signed by the rotated-in keys')
  t.same([...statuses.keys()], [200], 'every request with a valid token got 200')
  t.equal((await app.repos.signingKeys.list()).length, 3, 'three keys: the first and two rotations')
})
