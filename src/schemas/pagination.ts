import { Type } from '@sinclair/typebox'
import { AppError } from '../errors.js'

// Keyset pagination: a cursor is the last id of the previous page, wrapped so that clients
// treat it as opaque (and we may change what is inside without breaking them).
// At most 15 digits: every such id is a safe JavaScript integer.
const CURSOR = /^v1:([1-9]\d{0,14})$/

export const DEFAULT_LIMIT = 20
export const Limit = Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIMIT, description: 'Page size, 1–100' })
export const Cursor = Type.String({ minLength: 1, maxLength: 64, description: 'next_cursor of the previous page' })

export const PageQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
}, { additionalProperties: false })

export function encodeCursor (lastId: number): string {
  return Buffer.from(`v1:${lastId}`).toString('base64url')
}

/** The id inside a cursor; a cursor we did not make is a 400, never a 500. */
export function decodeCursor (cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString())
  if (!match || Buffer.from(`v1:${match[1]}`).toString('base64url') !== cursor) {
    throw new AppError(400, 'validation_error', 'The cursor is not one this API returned', [{ path: '/cursor', message: 'is not a valid cursor' }])
  }
  return Number(match[1])
}

/** Fetch `limit + 1` rows; the extra one only says whether there is a next page. */
export function toPage<T extends { id: number }> (rows: T[], limit: number) {
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return { items, next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null }
}
