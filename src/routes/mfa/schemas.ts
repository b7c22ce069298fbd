import { Type } from '@sinclair/typebox'
import { TotpCode } from '../auth/schemas.js'

export const EnableTotpBody = Type.Object({
  code: TotpCode,
}, { additionalProperties: false, examples: [{ code: '492039' }] })

export const DisableTotpBody = Type.Object({
  current_password: Type.String({ maxLength: 128, description: 'The account\'s password' }),
}, { additionalProperties: false, examples: [{ current_password: 'correct horse battery staple' }] })
