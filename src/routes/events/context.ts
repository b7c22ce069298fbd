import type { FastifyRequest } from 'fastify'
import { clientAddress } from '../../plugins/client-address.js'
import type { EventContext } from '../../repositories/events.js'

/** Who made the request and from where, as an event records it (API.md §15). */
export function eventContext (request: FastifyRequest): EventContext {
  return {
    actor_id: request.auth?.userId ?? null,
    // A request made with an API key has no session.
    session_id: request.auth?.sid || null,
    ip: clientAddress(request) || null,
    user_agent: request.headers['user-agent']?.slice(0, 255) || null,
    request_id: String(request.id).slice(0, 64),
  }
}
