import t from 'tap'
import { ConfigError } from '../../src/config.js'
import { rateLimitKey } from '../../src/plugins/client-address.js'
import { bearer, build, newUser, testConfig } from '../helper.js'
import type { App } from '../../src/app.js'

// The client address under TRUST_PROXY (API.md §12): the per-IP limits and the sessions' `ip`
// must hold against a client that writes its own X-Forwarded-For, and garbage in that header is
// ignored, never a 5xx. The peer address is set with inject's remoteAddress.

const LIMIT = 2

/** How many of `count` logins from `peer` with these X-Forwarded-For values got past the per-IP limit. */
async function admitted (app: App, requests: Array<{ peer: string, forwardedFor?: string }>): Promise<number[]> {
  const statuses: number[] = []
  for (const { peer, forwardedFor } of requests) {
    const response = await app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: peer,
      headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
      payload: { email: 'nobody@example.com', password: 'wrong password!' },
    })
    t.not(response.statusCode, 500, 'never a 5xx')
    statuses.push(response.statusCode)
  }
  return statuses
}

t.test('TRUST_PROXY off: X-Forwarded-For is ignored, the peer is limited', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH: String(LIMIT) })
  const statuses = await admitted(app, ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4'].map((spoofed) => ({ peer: '198.51.100.7', forwardedFor: spoofed })))
  t.same(statuses, [401, 401, 429, 429], 'four spoofed addresses from one peer share its limit')
})

t.test('TRUST_PROXY=1: the address the proxy appended counts, not the ones the client wrote', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH: String(LIMIT), TRUST_PROXY: '1' })
  // The client writes "9.9.9.N" itself; the one proxy appends the address it saw, 203.0.113.5.
  const statuses = await admitted(app, [1, 2, 3, 4].map((n) => ({ peer: '10.0.0.2', forwardedFor: `9.9.9.${n}, 203.0.113.5` })))
  t.same(statuses, [401, 401, 429, 429], 'the client cannot rotate its way past the limit')
  const other = await admitted(app, [{ peer: '10.0.0.2', forwardedFor: '203.0.113.6' }])
  t.same(other, [401], 'another client behind the same proxy has its own count')
})

t.test('TRUST_PROXY as a list: only a listed peer is believed', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH: String(LIMIT), TRUST_PROXY: '10.0.0.0/8, ::1' })
  const viaProxy = await admitted(app, [1, 2, 3].map((n) => ({ peer: '10.1.2.3', forwardedFor: `198.51.100.${n}` })))
  t.same(viaProxy, [401, 401, 401], 'through the listed proxy, three clients are three addresses')
  const direct = await admitted(app, [1, 2, 3].map((n) => ({ peer: '203.0.113.77', forwardedFor: `198.51.100.${n + 10}` })))
  t.same(direct, [401, 401, 429], 'an unlisted peer\'s X-Forwarded-For is its own invention: the peer is limited')
})

t.test('a malformed or over-long X-Forwarded-For: the peer counts, never a 5xx', async (t) => {
  const app = await build(t, { TRUST_PROXY: '1' })
  const user = newUser()
  await app.inject({ method: 'POST', url: '/register', payload: user })
  for (const [what, value] of [['200 characters', 'a'.repeat(200)], ['not an address', 'not-an-ip'], ['an address with junk', '1.2.3.4 junk'], ['a long IPv6-looking value', `${'1234:'.repeat(40)}1`]]) {
    const login = await app.inject({ method: 'POST', url: '/login', remoteAddress: '10.0.0.9', headers: { 'x-forwarded-for': value! }, payload: { email: user.email, password: user.password } })
    t.equal(login.statusCode, 200, `${what}: the login succeeds`)
    const sessions = await app.inject({ method: 'GET', url: '/sessions', headers: bearer(login.json().access_token) })
    const current = sessions.json().items.find((session: { current: boolean }) => session.current)
    t.equal(current.ip, '10.0.0.9', `${what}: the session shows the peer's address`)
  }
  const good = await app.inject({ method: 'POST', url: '/login', remoteAddress: '10.0.0.9', headers: { 'x-forwarded-for': '2001:db8::7' }, payload: { email: user.email, password: user.password } })
  const sessions = await app.inject({ method: 'GET', url: '/sessions', headers: bearer(good.json().access_token) })
  t.equal(sessions.json().items.find((session: { current: boolean }) => session.current).ip, '2001:db8::7', 'a well-formed forwarded address is kept')
})

t.test('IPv6 clients are limited by their /64', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH: String(LIMIT) })
  const sameSubnet = await admitted(app, ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:db8:1:2:abcd:1:2:3'].map((peer) => ({ peer })))
  t.same(sameSubnet, [401, 401, 429], 'three addresses of one /64 share one count')
  const otherSubnet = await admitted(app, [{ peer: '2001:db8:1:3::1' }])
  t.same(otherSubnet, [401], 'the next /64 has its own')

  t.equal(rateLimitKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(rateLimitKey('2001:DB8::1'), '2001:db8:0:0::/64', 'a "::" is expanded and case folded')
  t.equal(rateLimitKey('::1'), '0:0:0:0::/64')
  t.equal(rateLimitKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone is dropped')
  t.equal(rateLimitKey('::ffff:192.0.2.1'), '192.0.2.1', 'an IPv4-mapped address counts as its IPv4')
  t.equal(rateLimitKey('192.0.2.1'), '192.0.2.1', 'IPv4 as it is')
})

t.test('TRUST_PROXY: true and malformed lists are refused at start-up with one clear line', async (t) => {
  t.throws(() => testConfig({ TRUST_PROXY: 'true' }), new ConfigError('TRUST_PROXY: true would trust every hop, so a client could choose its own address; give the number of proxies in front of the API (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8)'))
  t.throws(() => testConfig({ TRUST_PROXY: '10.0.0.0/33' }), /TRUST_PROXY: "10.0.0.0\/33" is not/)
  t.throws(() => testConfig({ TRUST_PROXY: 'proxy.example.com' }), /TRUST_PROXY: "proxy.example.com" is not/)
  t.equal(testConfig({ TRUST_PROXY: '2' }).TRUST_PROXY, 2, 'a hop count')
  t.same(testConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8, 2001:db8::/32' }).TRUST_PROXY, ['loopback', '10.0.0.0/8', '2001:db8::/32'], 'a list')
  t.equal(testConfig({ TRUST_PROXY: 'false' }).TRUST_PROXY, false, 'false: none')
  t.equal(testConfig({}).TRUST_PROXY, false, 'the default: none')
})
