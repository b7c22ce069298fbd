import { Type } from '@sinclair/typebox'
import { ref } from '../../schemas/shared.js'

// RFC 7517 §4 and RFC 8037 (OKP) / RFC 7518 §6.2 (EC): only the members a verifier needs.
export const PublicJwkSchema = Type.Object({
  kty: Type.String({ description: '`OKP` (Ed25519) or `EC` (P-256)', examples: ['OKP'] }),
  crv: Type.String({ description: '`Ed25519` or `P-256`', examples: ['Ed25519'] }),
  x: Type.String({ description: 'Public key, base64url' }),
  y: Type.Optional(Type.String({ description: 'Second coordinate (EC keys only), base64url' })),
  kid: Type.String({ description: 'The `kid` in the header of the tokens this key signed', examples: ['3q2z0Yt6Hn3M7g5oZ8Kc2A'] }),
  alg: Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256')]),
  use: Type.Literal('sig'),
}, { $id: 'PublicJwk', additionalProperties: false, description: 'A public signing key (RFC 7517)' })

export const JwksSchema = Type.Object({
  keys: Type.Array(ref(PublicJwkSchema), {
    description: 'The signing key and every key whose tokens may still be valid; empty under HS256',
  }),
}, {
  additionalProperties: false,
  description: 'The JSON Web Key Set (RFC 7517 §5)',
  examples: [{ keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: '3q2z0Yt6Hn3M7g5oZ8Kc2A', alg: 'EdDSA', use: 'sig' }] }],
})
