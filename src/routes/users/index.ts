import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError, notFound } from '../../errors.js'
import { authOf, isAdmin, requireAdmin, requireFreshToken, requireSelfOrAdmin } from '../../plugins/auth/index.js'
import { BoardPageSchema, ErrorSchema, IdParams, ref, UserPageSchema, UserSchema } from '../../schemas/shared.js'
import { DEFAULT_LIMIT, PageQuery, decodeCursor, toPage } from '../../schemas/pagination.js'
import { clearPasswordAttempts, countPasswordAttempt, normaliseIdentity } from '../auth/index.js'
import { listBoards } from '../boards/index.js'
import { eventContext } from '../events/context.js'
import { ChangePasswordBody, CreateUserBody, UpdateUserBody } from './schemas.js'

const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, passwords, outbox } = app
  const forbiddenOrMissing = { 403: ref(ErrorSchema), 404: ref(ErrorSchema) }

  app.get('/users', {
    config: { auth: true, scope: 'admin' },
    schema: {
      tags: ['users'],
      operationId: 'listUsers',
      summary: 'List users (admin)',
      description: 'Keyset pagination by id: follow `next_cursor` until it is null.',
      querystring: PageQuery,
      response: { 200: ref(UserPageSchema, 'A page of users, by id'), 403: ref(ErrorSchema) },
    },
  }, async (request) => {
    requireAdmin(authOf(request))
    const limit = request.query.limit ?? DEFAULT_LIMIT
    return toPage(await repos.users.list({ limit, afterId: decodeCursor(request.query.cursor) }), limit)
  })

  app.post('/users', {
    config: { auth: true, scope: 'admin' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['users'],
      operationId: 'createUser',
      summary: 'Create a user with any role (admin)',
      description: 'Unlike `/register`, the caller (an admin) chooses the role. The email is trimmed and compared case-insensitively; a taken email is 409 `email_taken`.',
      body: CreateUserBody,
      response: { 201: ref(UserSchema, 'The new user; `Location` is its URL'), 403: ref(ErrorSchema), 409: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    requireAdmin(authOf(request))
    const { password, ...user } = request.body
    const created = await repos.users.create({ ...user, password_hash: await passwords.hash(password) }, eventContext(request))
    outbox.kick()
    return reply.code(201).header('location', `/users/${created.id}`).send(created)
  })

  app.get('/users/:id', {
    config: { auth: true, scope: 'users:read' },
    schema: {
      tags: ['users'],
      operationId: 'getUser',
      summary: 'Read a user (self or admin)',
      description: 'A non-admin asking for another user gets 403 whether or not that user exists.',
      params: IdParams,
      response: { 200: ref(UserSchema, 'The user'), ...forbiddenOrMissing },
    },
  }, async (request) => {
    requireSelfOrAdmin(authOf(request), request.params.id)
    return (await repos.users.findById(request.params.id)) ?? notFound('User')
  })

  app.patch('/users/:id', {
    config: { auth: true, scope: 'profile' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['users'],
      operationId: 'updateUser',
      summary: 'Change name, email or role (self or admin)',
      description: 'Changing your own email needs a fresh token (401 `fresh_token_required`). A new email is unverified ' +
        '(`email_verified_at` null) and gets a verification mail. Only an admin may change a ' +
        'role (403 otherwise); a role change revokes all of that user\'s tokens, and the last admin cannot demote ' +
        'themself (409 `last_admin`).',
      params: IdParams,
      body: UpdateUserBody,
      response: { 200: ref(UserSchema, 'The user as changed'), 401: ref(ErrorSchema), ...forbiddenOrMissing, 409: ref(ErrorSchema) },
    },
  }, async (request) => {
    const auth = authOf(request)
    const { id } = request.params
    const changes = request.body
    requireSelfOrAdmin(auth, id)
    if (changes.role !== undefined && !isAdmin(auth)) throw new AppError(403, 'forbidden', 'Only an admin may change a role')
    if (changes.email !== undefined && id === auth.userId) requireFreshToken(auth)
    if (!await repos.users.exists(id)) notFound('User')
    // API.md §10: a new address must be proven like the first one (its mail is queued with the change).
    await repos.users.update(id, changes, eventContext(request))
    outbox.kick()
    return (await repos.users.findById(id)) ?? notFound('User')
  })

  app.put('/users/:id/password', {
    config: { auth: true },
    schema: {
      tags: ['users'],
      operationId: 'changePassword',
      summary: 'Change a password',
      description: 'Your own: needs `current_password` and a fresh token; every other session of yours is revoked, this ' +
        'one stays. An admin setting another user\'s password needs no `current_password`; all of that user\'s ' +
        'sessions are revoked. The change and the end of those sessions are one transaction: both or neither. Each ' +
        '`current_password` checked counts toward the account\'s login lockout (see `POST /login`): a locked account gets 429.',
      params: IdParams,
      body: ChangePasswordBody,
      response: { 204: { type: 'null', description: 'Changed' }, 401: ref(ErrorSchema), ...forbiddenOrMissing },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    const { id } = request.params
    const { current_password: currentPassword, new_password: newPassword } = request.body
    requireSelfOrAdmin(auth, id)
    const self = id === auth.userId
    if (self) {
      requireFreshToken(auth)
      if (currentPassword === undefined) {
        throw new AppError(400, 'validation_error', 'current_password is required to change your own password',
          [{ path: '/current_password', message: 'is required when changing your own password' }])
      }
    }
    const account = await repos.users.findCredentials({ id })
    if (!account) notFound('User')
    if (self) {
      // A stolen access token must not become an unlimited password oracle: each guess counts
      // toward the account's lockout (API.md §12).
      await countPasswordAttempt(app, request, account.email)
      if (!await passwords.verify(account.password_hash, currentPassword!)) {
        throw new AppError(401, 'invalid_credentials', 'The current password is wrong')
      }
      await clearPasswordAttempts(app, account.email)
    }
    // One transaction: whoever knew the old password is logged out with the change, or nothing
    // changes. The caller keeps their own session.
    const changed = await repos.users.changePassword(id, await passwords.hash(newPassword), {
      // Your own: only over the password you just proved, so a reset that won the race stands.
      ...(self && { checkedHash: account.password_hash }),
      keptSessionId: self ? auth.sid : null,
      context: eventContext(request),
    })
    if (!changed && self) throw new AppError(401, 'invalid_credentials', 'The current password is wrong')
    if (!changed) notFound('User')
    return reply.code(204).send()
  })

  app.delete('/users/:id', {
    config: { auth: true },
    schema: {
      tags: ['users'],
      operationId: 'deleteUser',
      summary: 'Delete a user and their boards (self with a fresh token, or admin)',
      description: 'Every token of the user is dead on the next request. The last admin cannot delete themself (409 `last_admin`).',
      params: IdParams,
      response: { 204: { type: 'null', description: 'Deleted' }, 401: ref(ErrorSchema), ...forbiddenOrMissing, 409: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    const { id } = request.params
    requireSelfOrAdmin(auth, id)
    if (id === auth.userId) requireFreshToken(auth)
    if (!await repos.users.exists(id)) notFound('User')
    await repos.users.delete(id, eventContext(request))
    return reply.code(204).send()
  })

  app.get('/users/:id/boards', {
    config: { auth: true, scope: 'boards:read' },
    schema: {
      tags: ['users', 'boards'],
      operationId: 'listUserBoards',
      summary: 'A user\'s boards, newest first',
      description: 'The same as `GET /boards?author_id=:id`, but 404 when the user does not exist.',
      params: IdParams,
      querystring: PageQuery,
      response: { 200: ref(BoardPageSchema, 'A page of the user\'s boards, newest first'), 404: ref(ErrorSchema) },
    },
  }, async (request) => {
    if (!await repos.users.exists(request.params.id)) notFound('User')
    return listBoards(repos, { ...request.query, author_id: request.params.id })
  })
}

export default userRoutes
