import { Type } from '@sinclair/typebox'
import { OneTimeToken } from '../../schemas/shared.js'

export const VerifyEmailBody = Type.Object({
  token: OneTimeToken,
}, { additionalProperties: false, examples: [{ token: 'q1N0q2pVb2Vr…' }] })
