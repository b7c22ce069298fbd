import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../../errors.js'
import { authOf, requireSelfOrAdmin, type AuthContext } from '../../plugins/auth/index.js'
import type { Repositories } from '../../repositories/index.js'
import { BoardPageSchema, BoardSchema, ErrorSchema, IdParams, ref } from '../../schemas/shared.js'
import { DEFAULT_LIMIT, decodeCursor, toPage } from '../../schemas/pagination.js'
import { CreateBoardBody, ListBoardsQuery, ReplaceBoardBody, UpdateBoardBody } from './schemas.js'

/** One page of boards, newest first. Shared with GET /users/:id/boards. */
export async function listBoards (repos: Repositories, query: { limit?: number, cursor?: string, author_id?: number }) {
  const limit = query.limit ?? DEFAULT_LIMIT
  const rows = await repos.boards.list({ limit, beforeId: decodeCursor(query.cursor), authorId: query.author_id })
  return toPage(rows, limit)
}

const boardRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos } = app

  /** 404 when the board is missing, 403 when the caller is neither its author nor an admin. */
  async function requireAuthorOrAdmin (auth: AuthContext, boardId: number) {
    const authorId = await repos.boards.findAuthorId(boardId)
    if (authorId === null) notFound('Board')
    requireSelfOrAdmin(auth, authorId, 'Only the board\'s author or an admin may change it')
  }

  const errors = { 403: ref(ErrorSchema), 404: ref(ErrorSchema) }

  app.get('/boards', {
    config: { auth: true, scope: 'boards:read' },
    schema: {
      tags: ['boards'],
      operationId: 'listBoards',
      summary: 'List boards, newest first',
      description: 'Keyset pagination: follow `next_cursor` until it is null. Pages stay stable while boards are added.',
      querystring: ListBoardsQuery,
      response: { 200: ref(BoardPageSchema, 'A page of boards, newest first') },
    },
  }, async (request) => listBoards(repos, request.query))

  app.post('/boards', {
    config: { auth: true, scope: 'boards:write' },
    schema: {
      tags: ['boards'],
      operationId: 'createBoard',
      summary: 'Create a board',
      description: 'The author is the caller; a `user_id` or `author` in the body is a 400.',
      body: CreateBoardBody,
      response: { 201: ref(BoardSchema, 'The new board; `Location` is its URL') },
    },
  }, async (request, reply) => {
    const board = await repos.boards.create({ ...request.body, user_id: authOf(request).userId })
    return reply.code(201).header('location', `/boards/${board.id}`).send(board)
  })

  app.get('/boards/:id', {
    config: { auth: true, scope: 'boards:read' },
    schema: {
      tags: ['boards'],
      operationId: 'getBoard',
      summary: 'Read a board',
      description: 'Any signed-in user may read any board; the author is embedded as `{ id, name }`.',
      params: IdParams,
      response: { 200: ref(BoardSchema, 'The board'), 404: ref(ErrorSchema) },
    },
  }, async (request) => (await repos.boards.findById(request.params.id)) ?? notFound('Board'))

  app.put('/boards/:id', {
    config: { auth: true, scope: 'boards:write' },
    schema: {
      tags: ['boards'],
      operationId: 'replaceBoard',
      summary: 'Replace a board\'s title and content',
      description: 'Only its author or an admin.',
      params: IdParams,
      body: ReplaceBoardBody,
      response: { 200: ref(BoardSchema, 'The board as changed'), ...errors },
    },
  }, async (request) => {
    await requireAuthorOrAdmin(authOf(request), request.params.id)
    return (await repos.boards.update(request.params.id, request.body)) ?? notFound('Board')
  })

  app.patch('/boards/:id', {
    config: { auth: true, scope: 'boards:write' },
    schema: {
      tags: ['boards'],
      operationId: 'updateBoard',
      summary: 'Change a board\'s title or content',
      description: 'Only its author or an admin.',
      params: IdParams,
      body: UpdateBoardBody,
      response: { 200: ref(BoardSchema, 'The board as changed'), ...errors },
    },
  }, async (request) => {
    await requireAuthorOrAdmin(authOf(request), request.params.id)
    return (await repos.boards.update(request.params.id, request.body)) ?? notFound('Board')
  })

  app.delete('/boards/:id', {
    config: { auth: true, scope: 'boards:write' },
    schema: {
      tags: ['boards'],
      operationId: 'deleteBoard',
      summary: 'Delete a board',
      description: 'Only its author or an admin.',
      params: IdParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errors },
    },
  }, async (request, reply) => {
    await requireAuthorOrAdmin(authOf(request), request.params.id)
    if (!await repos.boards.delete(request.params.id)) notFound('Board')
    return reply.code(204).send()
  })
}

export default boardRoutes
