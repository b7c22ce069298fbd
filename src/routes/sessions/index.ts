import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../../errors.js'
import { authOf, clearRefreshCookie, requireSelfOrAdmin, type AuthContext } from '../../plugins/auth/index.js'
import { ErrorSchema, IdParams, ref, SessionPageSchema } from '../../schemas/shared.js'
import { DEFAULT_LIMIT, PageQuery } from '../../schemas/pagination.js'
import type { Repositories } from '../../repositories/index.js'
import { describeDevice } from '../../schemas/device.js'
import { eventContext } from '../events/context.js'
import type { EventContext } from '../../repositories/events.js'
import { decodeSessionCursor, encodeSessionCursor, SessionParams, UserSessionParams } from './schemas.js'

/** One page of the user's live sessions, the caller's own marked `current`. */
async function listSessions (repos: Repositories, auth: AuthContext, userId: number, query: { limit?: number, cursor?: string }) {
  const limit = query.limit ?? DEFAULT_LIMIT
  const rows = await repos.sessions.list(userId, { limit, after: decodeSessionCursor(query.cursor) })
  const items = rows.slice(0, limit).map((row) => ({ ...row, device: describeDevice(row.user_agent), current: row.id === auth.sid }))
  const last = items[items.length - 1]
  return { items, next_cursor: rows.length > limit && last ? encodeSessionCursor(last) : null }
}

/**
 * Ends one of the user's live sessions; anything else by that id is a 404, so a session id
 * never reveals whether it exists or whose it is (API.md §7). Its tokens are checked against
 * its row on every request, so they die on the next one, on every instance.
 */
async function endSession (repos: Repositories, userId: number, sid: string, context: EventContext) {
  if (!await repos.sessions.end(userId, sid, context)) notFound('Session')
}

const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos } = app
  const ended = { 204: { type: 'null', description: 'Ended: its access and refresh tokens are dead on the next request' } }

  app.get('/sessions', {
    config: { auth: true },
    schema: {
      tags: ['sessions'],
      operationId: 'listSessions',
      summary: 'Where am I signed in: your live sessions',
      description: 'Sessions not ended and not expired, most recently used (logged in or refreshed) first; yours is ' +
        '`current: true`. Keyset pagination: follow `next_cursor` until it is null.',
      querystring: PageQuery,
      response: { 200: ref(SessionPageSchema, 'A page of your live sessions') },
    },
  }, async (request) => {
    const auth = authOf(request)
    return listSessions(repos, auth, auth.userId, request.query)
  })

  app.delete('/sessions/:id', {
    config: { auth: true },
    schema: {
      tags: ['sessions'],
      operationId: 'endSession',
      summary: 'End one of your sessions',
      description: 'Its tokens die on the next request, on every instance. Ending your own (`current`) session is a ' +
        '`POST /logout` (and clears the browser-mode cookie). Another user\'s or an unknown session is 404, never 403.',
      params: SessionParams,
      response: { ...ended, 404: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    await endSession(repos, auth.userId, request.params.id, eventContext(request))
    request.log.info({ userId: auth.userId, sid: request.params.id }, 'session ended')
    // Ending your own session is a logout (API.md §7), browser-mode cookie included.
    if (request.params.id === auth.sid) clearRefreshCookie(reply)
    return reply.code(204).send()
  })

  app.get('/users/:id/sessions', {
    config: { auth: true },
    schema: {
      tags: ['sessions', 'users'],
      operationId: 'listUserSessions',
      summary: 'A user\'s live sessions (self or admin)',
      description: 'The same as `GET /sessions`, for any user when the caller is an admin. Others get 403.',
      params: IdParams,
      querystring: PageQuery,
      response: { 200: ref(SessionPageSchema, 'A page of the user\'s live sessions'), 403: ref(ErrorSchema), 404: ref(ErrorSchema) },
    },
  }, async (request) => {
    const auth = authOf(request)
    const { id } = request.params
    requireSelfOrAdmin(auth, id)
    if (id !== auth.userId && !await repos.users.exists(id)) notFound('User')
    return listSessions(repos, auth, id, request.query)
  })

  app.delete('/users/:id/sessions/:sid', {
    config: { auth: true },
    schema: {
      tags: ['sessions', 'users'],
      operationId: 'endUserSession',
      summary: 'End one of a user\'s sessions (self or admin)',
      description: 'The same as `DELETE /sessions/:id`, for any user when the caller is an admin. Others get 403; a ' +
        'session that is not a live one of this user is 404.',
      params: UserSessionParams,
      response: { ...ended, 403: ref(ErrorSchema), 404: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    const { id, sid } = request.params
    requireSelfOrAdmin(auth, id)
    await endSession(repos, id, sid, eventContext(request))
    request.log.info({ userId: id, sid, by: auth.userId }, 'session ended')
    return reply.code(204).send()
  })
}

export default sessionRoutes
