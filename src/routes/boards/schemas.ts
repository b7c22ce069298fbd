import { Type } from '@sinclair/typebox'
import { BoardContent, BoardTitle } from '../../schemas/shared.js'
import { PageQuery } from '../../schemas/pagination.js'

export const ListBoardsQuery = Type.Object({
  ...PageQuery.properties,
  author_id: Type.Optional(Type.Integer({ minimum: 1, description: 'Only boards by this user' })),
}, { additionalProperties: false })

export const CreateBoardBody = Type.Object({ title: BoardTitle, content: BoardContent },
  { additionalProperties: false, description: 'The author is the caller.', examples: [{ title: 'Hello, board', content: 'First post.' }] })

export const ReplaceBoardBody = Type.Object({ title: BoardTitle, content: BoardContent },
  { additionalProperties: false, examples: [{ title: 'Hello again', content: 'Edited.' }] })

export const UpdateBoardBody = Type.Object({ title: Type.Optional(BoardTitle), content: Type.Optional(BoardContent) },
  { additionalProperties: false, minProperties: 1, examples: [{ title: 'A better title' }] })
