import type { FastifyBaseLogger } from 'fastify'
import type { Mail } from './templates.js'
import type { MailTransport } from './transport.js'

/** Fields that say which mail a log line is about, never what it says (no address, no link). */
export type MailContext = Record<string, string | number>

export interface OutboxOptions {
  /** Delays before the 2nd, 3rd, … attempt; one attempt more than there are delays. */
  retryDelays: readonly number[]
}

/** The part of a nodemailer error that is safe to log: no message data, only what went wrong. */
function describeError (error: unknown) {
  const { code, responseCode, command } = error as { code?: string, responseCode?: number, command?: string }
  return { code, responseCode, command, message: (error as Error)?.message }
}

/**
 * Mails leave here, off the request path: `send()` returns at once, and the HTTP answer never
 * waits for (or fails because of) the mail server. A failed delivery is retried after each of
 * `retryDelays`, then given up, each step logged. close() aborts deliveries under way and
 * cancels the waits, so nothing here keeps a closing process (or a finished test) alive.
 */
export function createOutbox (transport: MailTransport, log: FastifyBaseLogger, { retryDelays }: OutboxOptions) {
  const shutdown = new AbortController()
  const pending = new Set<Promise<void>>()

  /** Resolves after `ms`, or at once on close (then false). The timer never holds the process. */
  function pause (ms: number): Promise<boolean> {
    if (shutdown.signal.aborted) return Promise.resolve(false)
    return new Promise((resolve) => {
      const onClose = () => { clearTimeout(timer); resolve(false) }
      const timer = setTimeout(() => { shutdown.signal.removeEventListener('abort', onClose); resolve(true) }, ms)
      timer.unref()
      shutdown.signal.addEventListener('abort', onClose, { once: true })
    })
  }

  async function deliver (mail: Mail, context: MailContext) {
    for (let attempt = 1; ; attempt++) {
      try {
        await transport.send(mail, shutdown.signal)
        if (transport.kind === 'smtp') log.info({ ...context, attempt }, 'mail sent')
        return
      } catch (error) {
        if (shutdown.signal.aborted) {
          log.warn({ ...context, attempt }, 'mail dropped: shutting down during delivery')
          return
        }
        const delay = retryDelays[attempt - 1]
        if (delay === undefined) {
          log.error({ ...context, attempt, error: describeError(error) }, 'mail given up after the last attempt')
          return
        }
        log.warn({ ...context, attempt, retryInMs: delay, error: describeError(error) }, 'mail delivery failed; will retry')
        if (!await pause(delay)) {
          log.warn({ ...context, attempt }, 'mail dropped: shutting down before the retry')
          return
        }
      }
    }
  }

  return {
    /**
     * Builds the mail (may touch the database, e.g. to issue a token) and delivers it, all after
     * the current request has been answered. `build` returning null means "no mail" (e.g. the
     * per-email cap was reached). Never throws; failures are logged with `context`.
     */
    send (build: () => Promise<Mail | null>, context: MailContext): void {
      if (shutdown.signal.aborted) {
        log.warn(context, 'mail dropped: shutting down')
        return
      }
      const job = new Promise<void>((resolve) => setImmediate(resolve))
        .then(build)
        .then((mail) => mail ? deliver(mail, context) : log.info(context, 'mail skipped'))
        .catch((error: unknown) => log.error({ ...context, err: error }, 'mail could not be prepared'))
        .finally(() => pending.delete(job))
      pending.add(job)
    },

    /** Resolves when every mail accepted so far has been delivered or given up (tests use it). */
    async idle (): Promise<void> {
      while (pending.size > 0) await Promise.all([...pending])
    },

    /** Stops: deliveries under way are aborted, waiting retries dropped, each logged. */
    async close (): Promise<void> {
      shutdown.abort()
      await Promise.all([...pending])
      transport.close()
    },
  }
}

export type Outbox = ReturnType<typeof createOutbox>
