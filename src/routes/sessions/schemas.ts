import { Type } from '@sinclair/typebox'
import { AppError } from '../../errors.js'
import { Id, SessionId } from '../../schemas/shared.js'
import type { SessionCursor } from '../../repositories/sessions.js'

export const SessionParams = Type.Object({ id: SessionId }, { additionalProperties: false })
export const UserSessionParams = Type.Object({ id: Id, sid: SessionId }, { additionalProperties: false })

// A page of sessions is ordered by (last_used_at, id), so its cursor carries both: a version
// byte, the time in 6 bytes of milliseconds and the 16 bytes of the UUID, in base64url (31
// characters, within the 64 the query allows). Opaque to clients, like the id cursors.
const CURSOR_VERSION = 0x73
const CURSOR_BYTES = 23

export function encodeSessionCursor (last: { last_used_at: Date, id: string }): string {
  const bytes = Buffer.alloc(CURSOR_BYTES)
  bytes[0] = CURSOR_VERSION
  bytes.writeUIntBE(last.last_used_at.getTime(), 1, 6)
  Buffer.from(last.id.replaceAll('-', ''), 'hex').copy(bytes, 7)
  return bytes.toString('base64url')
}

/** The position inside a cursor; a cursor we did not make is a 400, never a 500. */
export function decodeSessionCursor (cursor: string | undefined): SessionCursor | undefined {
  if (cursor === undefined) return undefined
  const bytes = Buffer.from(cursor, 'base64url')
  if (bytes.length !== CURSOR_BYTES || bytes[0] !== CURSOR_VERSION || bytes.toString('base64url') !== cursor) {
    throw new AppError(400, 'validation_error', 'The cursor is not one this API returned', [{ path: '/cursor', message: 'is not a valid cursor' }])
  }
  const hex = bytes.subarray(7).toString('hex')
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  return { lastUsedAt: new Date(bytes.readUIntBE(1, 6)), id }
}
