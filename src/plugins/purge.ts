import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** Delivered (or given up) outbox rows are kept this long, for an operator looking into a mail. */
const OUTBOX_KEEP_MS = 7 * 86_400_000

/**
 * Deletes expired blocklist rows, expired and ended sessions, spent login-failure windows, old
 * one-time tokens, security events older than AUDIT_RETENTION, finished outbox rows and expired
 * second-factor and passkey challenges now and then, so no table grows without bound. Safe with several
 * instances: each DELETE only removes rows that can no longer match anything (a token whose
 * session row is gone is dead too), and doing it twice is harmless. The timer is unref'd: it never keeps the process alive, and it
 * stops on close.
 */
export async function purgeExpired (app: FastifyInstance) {
  const tokens = await app.repos.tokens.purgeExpired()
  const sessions = await app.repos.sessions.purgeExpired()
  const loginFailures = await app.repos.loginFailures.purgeExpired(app.config.LOGIN_LOCKOUT_WINDOW)
  const oneTimeTokens = await app.repos.oneTimeTokens.purgeExpired()
  const events = await app.repos.events.purgeOlderThan(app.config.AUDIT_RETENTION)
  const outbox = await app.repos.outbox.purgeFinished(OUTBOX_KEEP_MS)
  const mfaChallenges = await app.repos.mfa.purgeExpired()
  const oidc = await app.repos.identities.purgeExpired()
  const passkeyChallenges = await app.repos.passkeys.purgeExpired()
  return { tokens, sessions, loginFailures, oneTimeTokens, events, outbox, mfaChallenges, oidc, passkeyChallenges }
}

export default fp(async (app) => {
  const interval = app.config.BLOCKLIST_PURGE_INTERVAL
  if (interval === 0) return
  let running: Promise<unknown> | null = null
  const timer = setInterval(() => {
    if (running) return
    running = purgeExpired(app)
      .then((removed) => app.log.debug(removed, 'purged expired rows'))
      // A database outage is reported by the requests; the next run simply tries again.
      .catch((error: unknown) => app.log.warn({ err: error }, 'purge of expired rows failed'))
      .finally(() => { running = null })
  }, interval)
  timer.unref()
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'purge', dependencies: ['config', 'db'] })
