import { Type } from '@sinclair/typebox'
import { API_KEY_SCOPES } from '../../repositories/api-keys.js'
import { StringEnum, Timestamp } from '../../schemas/shared.js'

export const Scope = StringEnum([...API_KEY_SCOPES], {
  description: '`boards:read` (read boards), `boards:write` (create, change, delete your boards), `users:read` (read users you may read), ' +
    '`profile` (GET /me, PATCH your name), `admin` (an admin\'s rights; only an admin may grant it)',
})

export const CreateApiKeyBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 80, description: 'What it is for, to recognise it in the list' }),
  scopes: Type.Array(Scope, { minItems: 1, maxItems: API_KEY_SCOPES.length, uniqueItems: true }),
  expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'Days until it stops working; without it, it works until revoked' })),
}, { additionalProperties: false, examples: [{ name: 'CI: nightly export', scopes: ['boards:read'], expires_in_days: 90 }] })

