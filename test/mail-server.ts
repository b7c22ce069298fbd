import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'
import { freePort } from './helper.js'

// A real SMTP server on loopback (smtp-server), and mailparser to read what arrived: the app's
// mails go through nodemailer and the network exactly as in production.

export interface ReceivedMail {
  /** RCPT TO addresses, as the server saw them. */
  to: string[]
  from: string
  subject: string
  text: string
  html: string
  /** The Message-ID header: the outbox row's own, the same on every attempt. */
  messageId: string
}

export interface MailServer {
  port: number
  /** For SMTP_URL. */
  url: string
  mails: ReceivedMail[]
  listen (): Promise<void>
  close (): Promise<void>
  /** The first mail (already here or still to come) that `match` accepts; rejects after `timeoutMs`. */
  waitForMail (match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>
}

/**
 * A server on a port of its own, listening unless `listening: false`; closed at the end of `t`.
 * `refuseFirst`: that many messages are answered 451 (a temporary failure) before any is taken.
 */
export async function startMailServer (t: Test, { listening = true, port, refuseFirst = 0 }: { listening?: boolean, port?: number, refuseFirst?: number } = {}): Promise<MailServer> {
  const chosenPort = port ?? await freePort()
  const mails: ReceivedMail[] = []
  let refusals = refuseFirst
  const waiters = new Set<() => void>()
  let server: SMTPServer | null = null

  const create = () => new SMTPServer({
    // Plain SMTP on loopback: no certificate to make, no login to configure.
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    closeTimeout: 100,
    onData (stream, session, callback) {
      if (refusals > 0) {
        refusals -= 1
        stream.resume()
        stream.on('end', () => callback(Object.assign(new Error('Try again later'), { responseCode: 451 })))
        return
      }
      simpleParser(stream).then((parsed) => {
        mails.push({
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          subject: parsed.subject ?? '',
          text: parsed.text ?? '',
          html: typeof parsed.html === 'string' ? parsed.html : '',
          messageId: parsed.messageId ?? '',
        })
        for (const wake of waiters) wake()
        callback()
      }, callback)
    },
  })

  const mailServer: MailServer = {
    port: chosenPort,
    url: `smtp://127.0.0.1:${chosenPort}`,
    mails,
    async listen () {
      server = create()
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject)
        server!.listen(chosenPort, '127.0.0.1', () => resolve())
      })
    },
    async close () {
      const closing = server
      server = null
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()))
    },
    waitForMail (match, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = mails.find(match)
          if (!found) return false
          clearTimeout(timer)
          waiters.delete(check)
          resolve(found)
          return true
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no matching mail within ${timeoutMs} ms (${mails.length} arrived)`))
        }, timeoutMs)
        if (!check()) waiters.add(check)
      })
    },
  }
  if (listening) await mailServer.listen()
  t.teardown(() => mailServer.close())
  return mailServer
}

/** The token of a mailed link `APP_URL/<path>#token=…`, or null. */
export function tokenOfLink (text: string, appUrl: string, path: string): string | null {
  const escaped = `${appUrl}${path}`.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  return new RegExp(`${escaped}#token=([A-Za-z0-9_-]+)`).exec(text)?.[1] ?? null
}
