import { Webhook } from 'standardwebhooks'
import type { Repositories } from '../repositories/index.js'
import { describeDevice } from '../schemas/device.js'
import { DeliveryError, type Handler } from './worker.js'

const TIMEOUT_MS = 10_000

/**
 * The handler of the outbox's webhook rows (API.md §15): the event, read from the audit log, is
 * POSTed as a Standard Webhooks message `{type, timestamp, data}`, signed with the `standardwebhooks`
 * package (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The id is the event's, so a
 * receiver can drop a message it has already seen (delivery is at least once). 2xx is delivered;
 * anything else, a timeout or a refused connection is retried; redirects are not followed.
 */
export function createWebhookHandler (repos: Repositories, url: string, secret: string): Handler {
  const signer = new Webhook(secret)
  return async (row, signal) => {
    const { event_id: eventId } = JSON.parse(row.payload ?? '{}') as { event_id?: number }
    const event = eventId === undefined ? null : await repos.events.findById(eventId)
    // Purged by AUDIT_RETENTION before it could be delivered: nothing left to say.
    if (!event) return 'skipped'
    const body = JSON.stringify({ type: event.type, timestamp: event.occurred_at.toISOString(), data: { ...event, device: describeDevice(event.user_agent) } })
    const id = `evt_${event.id}`
    const now = new Date()
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'boardkit-webhooks',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signer.sign(id, now, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]),
    }).catch((error: unknown) => {
      const cause = (error as { cause?: { code?: string } }).cause
      throw new DeliveryError(cause?.code ?? (error as Error).name ?? 'fetch_failed')
    })
    await response.body?.cancel()
    if (response.status >= 200 && response.status < 300) return 'sent'
    throw new DeliveryError(`http_${response.status}`)
  }
}
