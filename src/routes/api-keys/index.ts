import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError, notFound } from '../../errors.js'
import { authOf, isAdmin, requireFreshToken } from '../../plugins/auth/index.js'
import { DEFAULT_LIMIT, PageQuery, decodeCursor, toPage } from '../../schemas/pagination.js'
import { ApiKeyPageSchema, ApiKeySchema, ErrorSchema, IdParams, NewApiKeySchema, ref } from '../../schemas/shared.js'
import { eventContext } from '../events/context.js'
import { CreateApiKeyBody } from './schemas.js'

const DAY_MS = 86_400_000

/**
 * Personal access tokens (API.md §16): made, listed and revoked by their owner from a logged-in
 * session. No route here takes a key (no `scope`): a key never makes or ends keys.
 */
const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos } = app

  app.post('/api-keys', {
    config: { auth: true },
    schema: {
      tags: ['api-keys'],
      operationId: 'createApiKey',
      summary: 'Make a personal access token (fresh token)',
      description: 'For scripts, CI jobs and Postman: send it as `Authorization: Bearer bk_…` wherever an access token works, ' +
        'limited to its scopes (each operation lists the scope it needs under `apiKey`). The token is in this answer only. ' +
        'It dies when revoked, when it expires, and with every cut-off of your sessions: a password change or reset, a role ' +
        'change, a logout of others or everywhere, the deletion of the account. Only an admin may grant `admin`.',
      body: CreateApiKeyBody,
      response: { 201: ref(NewApiKeySchema, 'The key and, this once, its token'), 401: ref(ErrorSchema), 403: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    const { name, scopes, expires_in_days: days } = request.body
    if (scopes.includes('admin') && !isAdmin(auth)) throw new AppError(403, 'forbidden', 'Only an admin may grant the scope admin')
    const key = await repos.apiKeys.create(auth.userId, { name: name.trim(), scopes, expiresAt: days === undefined ? null : new Date(Date.now() + days * DAY_MS) }, eventContext(request))
    request.log.info({ userId: auth.userId, apiKey: key.id, scopes }, 'api key created')
    return reply.code(201).header('location', `/api-keys/${key.id}`).send(key)
  })

  app.get('/api-keys', {
    config: { auth: true },
    schema: {
      tags: ['api-keys'],
      operationId: 'listApiKeys',
      summary: 'Your live personal access tokens',
      description: 'Newest first, without their secrets, with when each was last used (to the minute).',
      querystring: PageQuery,
      response: { 200: ref(ApiKeyPageSchema, 'A page of your keys') },
    },
  }, async (request) => {
    const limit = request.query.limit ?? DEFAULT_LIMIT
    return toPage(await repos.apiKeys.list(authOf(request).userId, { limit, beforeId: decodeCursor(request.query.cursor) }), limit)
  })

  app.get('/api-keys/:id', {
    config: { auth: true },
    schema: {
      tags: ['api-keys'],
      operationId: 'getApiKey',
      summary: 'One of your live personal access tokens',
      description: 'Without its secret. Another user\'s, a revoked or an unknown id is 404.',
      params: IdParams,
      response: { 200: ref(ApiKeySchema, 'The key'), 404: ref(ErrorSchema) },
    },
  }, async (request) => (await repos.apiKeys.find(authOf(request).userId, request.params.id)) ?? notFound('API key'))

  app.delete('/api-keys/:id', {
    config: { auth: true },
    schema: {
      tags: ['api-keys'],
      operationId: 'revokeApiKey',
      summary: 'Revoke one of your personal access tokens',
      description: 'Dead on its next request, on every instance. Another user\'s or an unknown id is 404.',
      params: IdParams,
      response: { 204: { type: 'null', description: 'Revoked' }, 404: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    if (!await repos.apiKeys.revoke(auth.userId, request.params.id, eventContext(request))) notFound('API key')
    request.log.info({ userId: auth.userId, apiKey: request.params.id }, 'api key revoked')
    return reply.code(204).send()
  })
}

export default apiKeyRoutes
