import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.js'

// Who is calling, as far as an address can tell (API.md §12). The per-IP limits and the
// sessions' `ip` read it; both must hold against a client that writes its own X-Forwarded-For.

/** An IPv6 address in its longest text form (IPv4-mapped) is 45 characters: sessions.ip's size. */
const MAX_ADDRESS_LENGTH = 45

/**
 * Fastify's `trustProxy` for TRUST_PROXY: proxy-addr trusts a hop when the function says so, or
 * when the peer is in the list. A count becomes a function because Fastify's types take no
 * number, though proxy-addr does the same with one.
 */
export function trustProxyOption (trust: Config['TRUST_PROXY']): false | string[] | ((address: string, hop: number) => boolean) {
  if (trust === false) return false
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return [...trust]
}

/**
 * The client's address: Fastify's `request.ip` under the TRUST_PROXY rule (the first
 * X-Forwarded-For entry not added by a trusted proxy), unless that entry is not an IP address
 * or is longer than any address can be. Then it was garbage written by the client or a broken
 * proxy, and the peer's own address counts instead: never a 5xx (API.md §12).
 */
export function clientAddress (request: FastifyRequest): string {
  const ip = request.ip
  if (ip && ip.length <= MAX_ADDRESS_LENGTH && isIP(ip) !== 0) return ip
  return request.socket.remoteAddress ?? ''
}

/**
 * The key a per-IP limit counts by: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * its IPv4), an IPv6 address by its /64, which is what one subscriber is given: counting single
 * IPv6 addresses would let a client rotate through 2^64 of them.
 */
export function rateLimitKey (address: string): string {
  if (isIP(address) !== 6) return address
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]!
  return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`
}

/** The eight 16-bit groups of a valid IPv6 address, expanded ("::" filled, a zone dropped). */
function ipv6Groups (address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::')
  const part = (text: string) => text === '' ? [] : text.split(':').flatMap((group) => group.includes('.') ? ['0', '0'] : [group])
  const left = part(head)
  const right = tail === undefined ? [] : part(tail)
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  return groups.map((group) => group.replace(/^0+(?=.)/, ''))
}
