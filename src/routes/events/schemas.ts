import { Type } from '@sinclair/typebox'
import { Cursor, Limit } from '../../schemas/pagination.js'
import { StringEnum, Timestamp } from '../../schemas/shared.js'
import { EVENT_TYPES } from '../../repositories/events.js'

export const UserEventsQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
  type: Type.Optional(StringEnum([...EVENT_TYPES], { description: 'Only events of this type' })),
}, { additionalProperties: false })

export const AdminEventsQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
  type: Type.Optional(StringEnum([...EVENT_TYPES], { description: 'Only events of this type' })),
  user_id: Type.Optional(Type.Integer({ minimum: 1, description: 'Only events about this user (`subject_user_id`)' })),
  since: Type.Optional(Type.Unsafe<string>({ ...Timestamp, description: 'Only events at or after this time (ISO 8601), by the database clock of the node that wrote them' })),
}, { additionalProperties: false })
