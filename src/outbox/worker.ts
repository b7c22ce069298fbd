import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { isConflict } from '../db/cluster.js'
import { driverErrorCode } from '../db/errors.js'
import type { ClaimedRow, OutboxRepository } from '../repositories/outbox.js'

/** What a handler did with a row; a throw means "failed this time", retried with backoff. */
export type Outcome = 'sent' | 'skipped'
export type Handler = (row: ClaimedRow, signal: AbortSignal) => Promise<Outcome>

/** A failure with a reason safe to store and log: a code or a status, never message text. */
export class DeliveryError extends Error {
  constructor (readonly reason: string, readonly final = false) {
    super(reason)
  }
}

export interface WorkerOptions {
  /** How often an idle instance looks for due rows (a request that queues one kicks it at once). */
  pollInterval: number
  /** Retries stop this long after the row was written; it is then dead. */
  retryFor: number
  /** The first retry waits about this long; each next one twice as long, up to MAX_DELAY. */
  retryBase: number
  /** How long a claim holds a row; longer than a send may take (SMTP timeouts of src/mail/transport.ts: 10 + 10 + 30 s; a webhook's 10 s). */
  leaseMs: number
  batchSize?: number
}

const MAX_DELAY = 15 * 60_000
const STATS_EVERY_MS = 60_000

/** The reason of a failure: ours, the SMTP server's answer code, a network error code. */
function reasonOf (error: unknown): string {
  if (error instanceof DeliveryError) return error.reason
  const { responseCode, code } = error as { responseCode?: number, code?: string }
  if (responseCode) return `smtp_${responseCode}`
  return String(driverErrorCode(error) ?? code ?? (error as Error)?.name ?? 'error')
}

/**
 * Delivers the outbox (API.md §15): claims due rows with a lease, hands each to its kind's
 * handler, and marks it sent, skipped, retried later (exponential backoff with jitter) or dead
 * after `retryFor`. Any number of instances may run one: a row is sent by whoever holds its
 * claim, and a claim that dies with its instance lapses when the lease is over. At least once:
 * an instance killed between the send and its mark leaves the row to be sent again, with the
 * same Message-ID / webhook-id. close() aborts sends under way; their rows are retried later.
 */
export function createOutboxWorker (outbox: OutboxRepository, handlers: Record<ClaimedRow['kind'], Handler>, log: FastifyBaseLogger, options: WorkerOptions) {
  const { pollInterval, retryFor, retryBase, leaseMs, batchSize = 10 } = options
  const shutdown = new AbortController()
  let running: Promise<void> | null = null
  let again = false
  let failing = false
  let lastStats = Date.now()

  const backoff = (attempts: number) => {
    const ceiling = Math.min(MAX_DELAY, retryBase * 2 ** Math.max(0, attempts - 1))
    // "Equal jitter": at least half the step, so retries spread out without bunching at zero.
    return ceiling / 2 + Math.random() * ceiling / 2
  }

  async function handle (row: ClaimedRow) {
    const context = { outbox: row.id, kind: row.kind, attempt: row.attempts }
    try {
      const outcome = await handlers[row.kind](row, shutdown.signal)
      await outbox.finish(row, outcome, outcome === 'skipped' ? 'nothing_to_send' : null)
      log.info(context, outcome === 'sent' ? 'outbox: delivered' : 'outbox: nothing to send')
    } catch (error) {
      // Shutting down: the lease lapses, and this or another instance sends it later.
      if (shutdown.signal.aborted) return log.warn(context, 'outbox: delivery interrupted by shutdown; it will be retried')
      const reason = reasonOf(error)
      const delay = backoff(row.attempts)
      const final = error instanceof DeliveryError && error.final
      if (final || Date.now() - row.created_at.getTime() + delay > retryFor) {
        await outbox.finish(row, 'dead', reason)
        log.error({ ...context, reason }, 'outbox: given up')
      } else {
        await outbox.retryLater(row, delay, reason)
        log.warn({ ...context, reason, retryInMs: Math.round(delay) }, 'outbox: delivery failed; will retry')
      }
    }
  }

  /** Claims and handles batches until none is due. */
  async function drain () {
    while (!shutdown.signal.aborted) {
      let rows: ClaimedRow[]
      try {
        rows = await outbox.claimDue(randomBytes(12).toString('hex'), batchSize, leaseMs)
      } catch (error) {
        // A Galera certification conflict: another instance claimed these rows first.
        if (isConflict(error)) continue
        throw error
      }
      if (rows.length === 0) return
      await Promise.all(rows.map((row) => handle(row).catch((error: unknown) => {
        log.warn({ outbox: row.id, reason: reasonOf(error) }, 'outbox: could not record the outcome; the lease will lapse and it will be retried')
      })))
    }
  }

  async function reportStats () {
    if (Date.now() - lastStats < STATS_EVERY_MS) return
    lastStats = Date.now()
    const stats = await outbox.stats()
    if (stats.pending > 0) log.info(stats, 'outbox: pending')
  }

  /** Runs a drain now, or once more after the one under way (coalesced). */
  function poll (): Promise<void> {
    if (shutdown.signal.aborted) return Promise.resolve()
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      do {
        again = false
        try {
          await drain()
          await reportStats()
          if (failing) log.info('outbox: delivering again')
          failing = false
        } catch (error) {
          // The database is down: requests report it; say it here once, and keep polling.
          if (!failing) log.warn({ reason: reasonOf(error) }, 'outbox: cannot read the outbox; will keep trying')
          failing = true
        }
      } while (again && !shutdown.signal.aborted)
    })().finally(() => { running = null })
    return running
  }

  const timer = pollInterval > 0 ? setInterval(() => { void poll() }, pollInterval) : null
  timer?.unref()

  return {
    /** Something was queued: look now rather than at the next poll. */
    kick (): void { void poll() },

    /** Resolves when nothing is due (rows waiting for a retry are not due yet). Tests use it. */
    async idle (): Promise<void> {
      await poll()
      while (running) await running
    },

    async close (): Promise<void> {
      shutdown.abort()
      if (timer) clearInterval(timer)
      await running
    },
  }
}

export type OutboxWorker = ReturnType<typeof createOutboxWorker>
