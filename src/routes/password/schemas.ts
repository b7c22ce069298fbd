import { Type } from '@sinclair/typebox'
import { Email, OneTimeToken, Password } from '../../schemas/shared.js'

export const ForgotPasswordBody = Type.Object({
  email: Email,
}, { additionalProperties: false, examples: [{ email: 'ada@example.com' }] })

export const ResetPasswordBody = Type.Object({
  token: OneTimeToken,
  new_password: Password,
}, { additionalProperties: false, examples: [{ token: 'q1N0q2pVb2Vr…', new_password: 'battery staple horse correct' }] })
