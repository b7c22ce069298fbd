import { Type } from '@sinclair/typebox'
import { Id, StringEnum, Timestamp } from '../../schemas/shared.js'

const ProviderId = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$', description: 'A provider\'s id, as configured in `OIDC_PROVIDERS`', examples: ['google'] })
const RedirectUri = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'Where the browser comes back to, with `#code=…` or `#error=…`: exactly one of `OIDC_REDIRECT_URIS`',
  examples: ['https://app.example.com/auth/done'],
})

export const ProviderParams = Type.Object({ provider: ProviderId }, { additionalProperties: false })

export const StartQuery = Type.Object({ redirect_uri: RedirectUri }, { additionalProperties: false })

// The provider's redirect (RFC 6749 §4.1.2): `code` and `state`, or `error` (§4.1.2.1). Providers
// add their own parameters (`iss` of RFC 9207, `session_state`, `scope`, …): they are allowed.
export const CallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ maxLength: 4096 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 4096 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
}, { additionalProperties: true })

export const ExchangeBody = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 256, description: 'The `code` from the fragment of `redirect_uri#code=…`', examples: ['Zt3Qm9Kx0b1Vn7Wc2Yp5Hs8Ld4Ue6Gf1Ja3Ik0Ql2Mo'] }),
}, { additionalProperties: false, examples: [{ code: 'Zt3Qm9Kx0b1Vn7Wc2Yp5Hs8Ld4Ue6Gf1Ja3Ik0Ql2Mo' }] })

export const ExchangeQuery = Type.Object({
  refresh: Type.Optional(StringEnum(['body', 'cookie'], {
    default: 'body',
    description: 'As for `POST /login`: `cookie` puts the refresh token in the `HttpOnly` `__Host-refresh` cookie instead of the body.',
  })),
}, { additionalProperties: false })

export const LinkBody = Type.Object({ redirect_uri: RedirectUri }, { additionalProperties: false, examples: [{ redirect_uri: 'https://app.example.com/settings' }] })

export const OidcProviderListSchema = Type.Object({
  items: Type.Array(Type.Object({
    id: ProviderId,
    name: Type.String({ description: 'What a button says: "Sign in with …"', examples: ['Google'] }),
  }, { additionalProperties: false })),
}, { additionalProperties: false, description: 'The providers one can sign in with', examples: [{ items: [{ id: 'google', name: 'Google' }] }] })

export const AuthorizationUrlSchema = Type.Object({
  authorization_url: Type.String({ description: 'Send the browser here (`location.assign`); it comes back to `redirect_uri`', examples: ['https://accounts.google.com/o/oauth2/v2/auth?client_id=…'] }),
}, { additionalProperties: false })

export const IdentitySchema = Type.Object({
  id: Id,
  provider: ProviderId,
  issuer: Type.String({ description: 'The provider\'s issuer identifier', examples: ['https://accounts.google.com'] }),
  subject: Type.String({ description: 'The provider\'s stable id of the person (`sub`): what identifies the identity, never the email', examples: ['110169484474386276334'] }),
  email: Type.Union([Type.String(), Type.Null()], { description: 'The email the provider gave at the last sign-in, for display', examples: ['ada@example.com'] }),
  created_at: Timestamp,
  last_used_at: Type.Unsafe<Date | null>({ type: ['string', 'null'], format: 'date-time', description: 'The last sign-in with it; null if never (linked from a session)', examples: ['2026-11-22T10:00:00.000Z'] }),
}, { additionalProperties: false, description: 'A provider account linked to yours' })

export const IdentityListSchema = Type.Object({ items: Type.Array(IdentitySchema) }, { additionalProperties: false, description: 'Your linked provider accounts, oldest first' })

export const redirectHeaders = {
  location: { type: 'string', description: 'Where the browser goes next' },
}
