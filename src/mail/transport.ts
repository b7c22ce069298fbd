import type { FastifyBaseLogger } from 'fastify'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { Config } from '../config.js'
import type { Mail } from './templates.js'

/** Where mails go: an SMTP server, the log (development), or nowhere (production without SMTP). */
export interface MailTransport {
  readonly kind: 'smtp' | 'log' | 'none'
  /** Delivers the mail or throws; `signal` aborts a delivery under way (shutdown). */
  send (mail: Mail, signal: AbortSignal): Promise<void>
  close (): void
}

// nodemailer's defaults wait 2 minutes for a connection and 10 for a silent socket. A send runs
// off the request path, but a stuck one would still hold its retry slot that long.
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }

/** True for smtp:// to any host but a loopback one (127.0.0.0/8, ::1, localhost). */
export function requiresStartTls (smtpUrl: string): boolean {
  const url = new URL(smtpUrl)
  if (url.protocol !== 'smtp:') return false
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return !(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))
}

export async function createMailTransport (config: Pick<Config, 'SMTP_URL' | 'MAIL_FROM' | 'NODE_ENV'>, log: FastifyBaseLogger): Promise<MailTransport> {
  if (config.SMTP_URL) {
    // Loaded only when there is a server to talk to: the import alone takes ~0.3-0.6 s, which
    // every start-up, CLI run and test without SMTP would otherwise pay.
    const { default: nodemailer } = await import('nodemailer')
    // smtps:// is TLS from the start. smtp:// must upgrade with STARTTLS (API.md §12): left to
    // "when the server offers it", a path attacker strips the offer and reads every reset link.
    // Only a loopback relay (a local MTA, a test server) may be spoken to in the clear.
    // No `logger`/`debug`: nodemailer would log the message, and with it the token.
    const transporter = nodemailer.createTransport({ url: config.SMTP_URL, ...SMTP_TIMEOUTS, requireTLS: requiresStartTls(config.SMTP_URL) })
    const server = new URL(config.SMTP_URL)
    const tracer = trace.getTracer('boardkit')
    return {
      kind: 'smtp',
      async send (mail, signal) {
        // A span per delivery attempt (API.md §18), in the trace of whatever woke the outbox
        // worker: usually the request that queued the mail, answered by then (docs/metrics.md).
        // No address or subject in it.
        const span = tracer.startSpan('smtp send', { kind: SpanKind.CLIENT, attributes: { 'server.address': server.hostname, 'server.port': Number(server.port || (server.protocol === 'smtps:' ? 465 : 587)) } })
        try {
          await transporter.sendMail({ from: config.MAIL_FROM, ...mail, signal })
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as { code?: string }).code ?? 'error' })
          throw error
        } finally {
          span.end()
        }
      },
      close: () => transporter.close(),
    }
  }
  if (config.NODE_ENV !== 'production') {
    // Development: `npm start` works without a mail server, and the link can be copied from the
    // log. Never in production, where whoever reads the log would own the account.
    return {
      kind: 'log',
      async send (mail) {
        log.info({ mail: { to: mail.to, subject: mail.subject, text: mail.text } }, 'mail (SMTP_URL is not set: written to the log instead of sent)')
      },
      close () {},
    }
  }
  return {
    kind: 'none',
    async send (mail) {
      // The subject says which kind of mail; the body (with its link) is not logged.
      log.warn({ subject: mail.subject }, 'mail not sent: SMTP_URL is not set')
    },
    close () {},
  }
}
