import argon2 from 'argon2'
import { trace } from '@opentelemetry/api'
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'

// OWASP's argon2id baseline, as API.md §3 requires: 19 MiB, 2 passes, 1 lane. argon2 hashes in
// libuv's thread pool, so a login does not block the event loop.
export const ARGON2_PARAMETERS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const

export interface PasswordHasher {
  hash (password: string): Promise<string>
  /** Verifies against `hash`, or against a dummy hash when there is no user (see below). */
  verify (hash: string | null, password: string): Promise<boolean>
  /** True when the stored hash is weaker than ARGON2_PARAMETERS and should be replaced. */
  needsRehash (hash: string): boolean
}

/**
 * Runs at most `limit` tasks at once. Each argon2 run holds 19 MiB and a CPU core for its whole
 * time; more at once than there are cores only adds memory (four runs on libuv's four threads
 * took the process past 300 MB) without finishing any sooner. The server's thread pool has one
 * thread per core too (src/environment.ts): glibc keeps a hash's memory in the arena of the thread
 * that ran it, so only as many threads keep it as hashes run at once.
 */
function limitConcurrency (limit: number) {
  let running = 0
  const waiting: Array<() => void> = []
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve))
    running += 1
    try {
      return await task()
    } finally {
      running -= 1
      waiting.shift()?.()
    }
  }
}

const tracer = trace.getTracer('boardkit')

/**
 * argon2 work in a span of its own (API.md §18): the slowest step of a login or a register, its
 * wait for a free core included, so a trace shows where the time went.
 */
async function inSpan<T> (name: string, work: () => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { attributes: { 'argon2.memory_kib': ARGON2_PARAMETERS.memoryCost, 'argon2.passes': ARGON2_PARAMETERS.timeCost } })
  try {
    return await work()
  } finally {
    span.end()
  }
}

export async function createPasswordHasher (): Promise<PasswordHasher> {
  const limited = limitConcurrency(availableParallelism())
  // Unknown email: still verify against a fixed dummy hash. Both failures then cost one argon2
  // run, and the response time does not reveal which emails have accounts.
  const dummyHash = await argon2.hash(randomBytes(32).toString('hex'), ARGON2_PARAMETERS)
  return {
    hash: (password) => inSpan('argon2 hash', () => limited(() => argon2.hash(password, ARGON2_PARAMETERS))),
    async verify (hash, password) {
      try {
        return await inSpan('argon2 verify', () => limited(() => argon2.verify(hash ?? dummyHash, password))) && hash !== null
      } catch {
        // A corrupt stored hash is a failed login, not a 500.
        return false
      }
    },
    needsRehash: (hash) => argon2.needsRehash(hash, ARGON2_PARAMETERS),
  }
}
