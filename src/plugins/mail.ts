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
  type Recipient = Pick<User, 'id' | 'email' | 'name'>
  type Purpose = 'password_reset' | 'email_verification'
  // Queues the mail of `purpose`; its single-use token is issued when the mail is made. The link
  // carries the token in the fragment, which browsers never send to a server: it stays out of
  // request lines, proxy logs and Referer headers (API.md §10).
  const sendLink = (purpose: Purpose, user: Recipient, path: string, ttl: number, template: typeof passwordResetMail) => {
    outbox.send(async () => {
      const token = await repos.oneTimeTokens.issue({ purpose, userId: user.id, email: user.email, ttl, maxPerHour: MAILS_PER_HOUR })
      return token === null ? null : template({ to: user.email, name: user.name, link: `${config.APP_URL}${path}#token=${token}`, validFor: ttl })
    }, { mail: purpose, userId: user.id })
  }

  app.decorate('mail', {
    sendPasswordReset: (user) => sendLink('password_reset', user, '/reset-password', config.PASSWORD_RESET_TTL, passwordResetMail),
    sendEmailVerification: (user) => sendLink('email_verification', user, '/verify-email', config.EMAIL_VERIFICATION_TTL, verificationMail),
    idle: () => outbox.idle(),
  } satisfies Mailer)

  app.addHook('onClose', () => outbox.close())
}, { name: 'mail', dependencies: ['config', 'db'] })
