import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../../errors.js'
import { authOf, requireAdmin, requireSelfOrAdmin } from '../../plugins/auth/index.js'
import type { EventFilter, EventRow } from '../../repositories/events.js'
import type { Repositories } from '../../repositories/index.js'
import { describeDevice } from '../../schemas/device.js'
import { DEFAULT_LIMIT, decodeCursor, toPage } from '../../schemas/pagination.js'
import { ErrorSchema, IdParams, ref, SecurityEventPageSchema } from '../../schemas/shared.js'
import { AdminEventsQuery, UserEventsQuery } from './schemas.js'

/** One page of events, newest first; the cursor is the last id, as for boards (API.md §5). */
async function listEvents (repos: Repositories, filter: Omit<EventFilter, 'beforeId'>, query: { limit?: number, cursor?: string }) {
  const limit = query.limit ?? DEFAULT_LIMIT
  const rows = await repos.events.list({ ...filter, beforeId: decodeCursor(query.cursor) }, limit)
  return toPage(rows.map((row: EventRow) => ({ ...row, device: describeDevice(row.user_agent) })), limit)
}

const pageDescription = 'Newest first; keyset pagination: follow `next_cursor` until it is null. ' +
  '`login.failed` and `login.locked` are one row per email and minute, with `count` attempts.'

/** The audit log (API.md §15): one's own events, and every event for an admin. */
const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos } = app

  app.get('/users/:id/events', {
    config: { auth: true },
    schema: {
      tags: ['users'],
      operationId: 'listUserEvents',
      summary: 'A user\'s security events (self or admin)',
      description: `What happened to the account: sign-ins, failed and locked logins, sessions ended, password and profile changes. ${pageDescription}`,
      params: IdParams,
      querystring: UserEventsQuery,
      response: { 200: ref(SecurityEventPageSchema, 'A page of the user\'s events'), 403: ref(ErrorSchema), 404: ref(ErrorSchema) },
    },
  }, async (request) => {
    const auth = authOf(request)
    const { id } = request.params
    requireSelfOrAdmin(auth, id)
    // A deleted user's events outlive them; an admin reads them through GET /admin/events?user_id=.
    if (id !== auth.userId && !await repos.users.exists(id)) notFound('User')
    return listEvents(repos, { userId: id, type: request.query.type }, request.query)
  })

  app.get('/admin/events', {
    config: { auth: true, scope: 'admin' },
    schema: {
      tags: ['admin'],
      operationId: 'listEvents',
      summary: 'Every security event, with filters (admin)',
      description: `${pageDescription} Filters combine: \`type\`, \`user_id\` (also for deleted users), \`since\`.`,
      querystring: AdminEventsQuery,
      response: { 200: ref(SecurityEventPageSchema, 'A page of events'), 403: ref(ErrorSchema) },
    },
  }, async (request) => {
    requireAdmin(authOf(request))
    const { type, user_id: userId, since } = request.query
    return listEvents(repos, { type, userId, since: since === undefined ? undefined : new Date(since) }, request.query)
  })
}

export default eventRoutes
