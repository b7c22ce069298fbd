import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Database } from '../db/database.js'
import { passwordResetMail, verificationMail, type Mail } from '../mail/templates.js'
import type { MailTransport } from '../mail/transport.js'
import type { Repositories } from '../repositories/index.js'
import type { ClaimedRow, MailKind } from '../repositories/outbox.js'
import { open, seal } from './seal.js'
import { DeliveryError, type Handler } from './worker.js'

/** API.md §10: at most this many mails of one kind to one address per hour. */
export const MAILS_PER_HOUR = 3

const LINKS: Record<MailKind, { path: string, template: typeof passwordResetMail, ttl: (config: Config) => number }> = {
  password_reset: { path: '/reset-password', template: passwordResetMail, ttl: (config) => config.PASSWORD_RESET_TTL },
  email_verification: { path: '/verify-email', template: verificationMail, ttl: (config) => config.EMAIL_VERIFICATION_TTL },
}

class ClaimLost extends Error {}

/**
 * The handler of the outbox's mail rows. A row is written by the request with only its kind and
 * recipient; the first claim makes the mail: issues the single-use token and stores the mail
 * with it, sealed (src/outbox/seal.ts), in one transaction, so a token exists only in a mail that
 * will be sent. Later attempts send that same mail, with the same Message-ID. The link carries
 * the token in the fragment, which browsers never send to a server (API.md §10).
 */
export function createMailHandler (repos: Repositories, transport: MailTransport, config: Config, log: FastifyBaseLogger): Handler {
  const domain = new URL(config.APP_URL).hostname || 'boardkit'

  async function make (row: ClaimedRow & { kind: MailKind }): Promise<Mail | null> {
    if (row.user_id === null) return null
    const user = await repos.users.findById(row.user_id)
    // Gone, or already verified (a second request before the first mail's link was used).
    if (!user || (row.kind === 'email_verification' && user.email_verified_at)) return null
    const { path, template, ttl } = LINKS[row.kind]
    let mail: Mail | null = null
    const token = await repos.oneTimeTokens.issue(
      { purpose: row.kind, userId: user.id, email: user.email, ttl: ttl(config), maxPerHour: MAILS_PER_HOUR },
      async (tx: Database, token: string) => {
        mail = template({ to: user.email, name: user.name, link: `${config.APP_URL}${path}#token=${token}`, validFor: ttl(config) })
        if (!await repos.outbox.savePayload(tx, row, seal(JSON.stringify(mail), row.id, config.JWT_SECRET))) throw new ClaimLost()
      },
    ).catch((error: unknown) => {
      if (error instanceof ClaimLost) throw new DeliveryError('claim_lost')
      throw error
    })
    // null: the per-address cap of the hour is spent, or the address changed since.
    return token === null ? null : mail
  }

  return async (row, signal) => {
    const kind = row.kind as MailKind
    // Production without SMTP_URL: nothing can be sent, and no token is issued for nothing.
    if (transport.kind === 'none') {
      log.warn({ outbox: row.id, kind }, 'mail not sent: SMTP_URL is not set')
      return 'skipped'
    }
    let mail: Mail | null
    if (row.payload !== null) {
      const plain = open(row.payload, row.id, config.JWT_SECRET)
      if (plain === null) throw new DeliveryError('payload_unreadable', true)
      mail = JSON.parse(plain) as Mail
    } else {
      mail = await make({ ...row, kind })
    }
    if (!mail) return 'skipped'
    await transport.send({ ...mail, messageId: `<outbox.${row.id}.${row.created_at.getTime()}@${domain}>` }, signal)
    return 'sent'
  }
}
