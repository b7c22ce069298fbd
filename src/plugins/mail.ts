import fp from 'fastify-plugin'
import type { User } from '../schemas/shared.js'
import { createOutbox } from '../mail/outbox.js'
import { passwordResetMail, verificationMail } from '../mail/templates.js'
import { createMailTransport } from '../mail/transport.js'

/** API.md §10: at most this many mails of one kind to one address per hour. */
export const MAILS_PER_HOUR = 3

export interface Mailer {
  /** Queues a password-reset mail for the user; returns at once (the work is off the request path). */
  sendPasswordReset (user: Pick<User, 'id' | 'email' | 'name'>): void
  /** Queues a mail that verifies the user's current email; returns at once. */
  sendEmailVerification (user: Pick<User, 'id' | 'email' | 'name'>): void
  /** Resolves when every queued mail has been delivered or given up. */
  idle (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mail: Mailer
  }
}

/**
 * Account mails (API.md §10). The transport comes from the configuration (src/mail/transport.ts);
 * routes only say which mail a user gets. Issuing the token happens with the mail, after the
 * response: a known and an unknown email then cost a request the same (no enumeration by timing).
 */
export default fp(async (app) => {
  const { config, repos } = app
  const transport = await createMailTransport(config, app.log)
  const outbox = createOutbox(transport, app.log, { retryDelays: config.MAIL_RETRY_DELAYS })
  if (transport.kind === 'none') {
    app.log.warn('SMTP_URL is not set: password-reset and verification mails will not be sent')
  }
  // Links carry the token in the fragment, which browsers never send to a server: it stays out of
  // request lines, proxy logs and Referer headers (API.md §10).
  const linkTo = (path: string, token: string) => `${config.APP_URL}${path}#token=${token}`

  app.decorate('mail', {
    sendPasswordReset (user) {
      outbox.send(async () => {
        const token = await repos.oneTimeTokens.issue({
          purpose: 'password_reset', userId: user.id, email: user.email, ttl: config.PASSWORD_RESET_TTL, maxPerHour: MAILS_PER_HOUR,
        })
        return token === null ? null : passwordResetMail({ to: user.email, name: user.name, link: linkTo('/reset-password', token), validFor: config.PASSWORD_RESET_TTL })
      }, { mail: 'password_reset', userId: user.id })
    },
    sendEmailVerification (user) {
      outbox.send(async () => {
        const token = await repos.oneTimeTokens.issue({
          purpose: 'email_verification', userId: user.id, email: user.email, ttl: config.EMAIL_VERIFICATION_TTL, maxPerHour: MAILS_PER_HOUR,
        })
        return token === null ? null : verificationMail({ to: user.email, name: user.name, link: linkTo('/verify-email', token), validFor: config.EMAIL_VERIFICATION_TTL })
      }, { mail: 'email_verification', userId: user.id })
    },
    idle: () => outbox.idle(),
  } satisfies Mailer)

  app.addHook('onClose', () => outbox.close())
}, { name: 'mail', dependencies: ['config', 'db'] })
