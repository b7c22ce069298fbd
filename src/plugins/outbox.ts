import fp from 'fastify-plugin'
import { createMailTransport } from '../mail/transport.js'
import { createMailHandler } from '../outbox/mail.js'
import { createWebhookHandler } from '../outbox/webhooks.js'
import { createOutboxWorker, type Handler } from '../outbox/worker.js'

export interface OutboxDelivery {
  /** A request queued a mail or an event: deliver now rather than at the next poll. */
  kick (): void
  /** Resolves when nothing is due any more (rows waiting for a retry are not due). */
  idle (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    outbox: OutboxDelivery
  }
}

/**
 * Delivery of the outbox table (API.md §15): account mails (src/outbox/mail.ts) and, with
 * WEBHOOK_URL, every security event as a signed webhook (src/outbox/webhooks.ts). What is queued
 * is written by the repositories in the transaction of the change; this only sends it, from
 * every instance (src/outbox/worker.ts).
 */
export default fp(async (app) => {
  const { config, repos } = app
  const transport = await createMailTransport(config, app.log)
  if (transport.kind === 'none') {
    app.log.warn('SMTP_URL is not set: password-reset and verification mails will not be sent')
  }
  const mail = createMailHandler(repos, transport, config, app.log)
  const webhook: Handler = config.WEBHOOK_URL && config.WEBHOOK_SECRET
    ? createWebhookHandler(repos, config.WEBHOOK_URL, config.WEBHOOK_SECRET)
    // Queued while WEBHOOK_URL was set, and it is no longer: there is nowhere to send them.
    : async () => 'skipped'
  const worker = createOutboxWorker(repos.outbox, { password_reset: mail, email_verification: mail, webhook }, app.log, {
    pollInterval: config.OUTBOX_POLL_INTERVAL,
    retryFor: config.MAIL_RETRY_FOR,
    retryBase: config.OUTBOX_RETRY_BASE,
    leaseMs: config.OUTBOX_LEASE,
  })
  app.decorate('outbox', { kick: worker.kick, idle: worker.idle } satisfies OutboxDelivery)
  // Depth and oldest age for /metrics (API.md §18), read from the table at scrape time: the
  // whole cluster's outbox, the same on every instance, since any instance delivers any row.
  app.metrics.observeOutbox(async () => {
    const { pending, oldestAgeSeconds } = await repos.outbox.stats()
    return { depth: pending, oldestAgeSeconds }
  })
  app.addHook('onClose', async () => {
    await worker.close()
    transport.close()
  })
}, { name: 'outbox', dependencies: ['config', 'db', 'metrics'] })
