import { Type, type Static } from '@sinclair/typebox'
import { Email, Name, Password, StringEnum } from '../../schemas/shared.js'
import { AuthenticationResponse } from '../passkeys/schemas.js'

export const RegisterBody = Type.Object({
  email: Email,
  name: Name,
  password: Password,
}, { additionalProperties: false, examples: [{ email: 'ada@example.com', name: 'Ada Lovelace', password: 'correct horse battery staple' }] })
export type RegisterBody = Static<typeof RegisterBody>

export const LoginBody = Type.Object({
  email: Type.String({ maxLength: 254, examples: ['ada@example.com'] }),
  password: Type.String({ maxLength: 128, examples: ['correct horse battery staple'] }),
}, { additionalProperties: false, examples: [{ email: 'ada@example.com', password: 'correct horse battery staple' }] })
export type LoginBody = Static<typeof LoginBody>

export const LoginQuery = Type.Object({
  refresh: Type.Optional(StringEnum(['body', 'cookie'], {
    default: 'body',
    description: '`body`: the refresh token is in the response body. `cookie` (browser mode, for single-page apps): it is only ' +
      'in an `HttpOnly` `__Host-refresh` cookie, out of reach of any script on the page; `POST /refresh` then reads it.',
  })),
}, { additionalProperties: false })

export const RefreshBody = Type.Object({
  refresh_token: Type.Optional(Type.String({ minLength: 1, description: 'Alternative to sending the refresh token as the Bearer token' })),
}, { additionalProperties: false })

export const LogoutQuery = Type.Object({
  scope: Type.Optional(StringEnum(['local', 'others', 'global'], {
    default: 'local',
    description: '`local`: this session. `others`: every other session of the user. `global`: all sessions.',
  })),
}, { additionalProperties: false })

export const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'The 6 digits the authenticator app shows now, without spaces', examples: ['492039'] })

export const MfaLoginBody = Type.Object({
  mfa_token: Type.String({ minLength: 1, maxLength: 256, description: 'From the `mfa_required` answer of `POST /login`', examples: ['r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo'] }),
  code: Type.Optional(TotpCode),
  recovery_code: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'One of the recovery codes, in place of `code`; case, spaces and hyphens do not matter',
    examples: ['7k2m-q9xd-4hwe-pt3a'],
  })),
  passkey_response: Type.Optional(AuthenticationResponse),
}, {
  additionalProperties: false,
  description: 'The `mfa_token` and exactly one of `code`, `recovery_code` and `passkey_response` (the answer of ' +
    '`navigator.credentials.get()` to the options of `POST /login/mfa/options`)',
  examples: [
    { mfa_token: 'r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo', code: '492039' },
    { mfa_token: 'r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo', recovery_code: '7k2m-q9xd-4hwe-pt3a' },
  ],
})
