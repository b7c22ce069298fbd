import { Type } from '@sinclair/typebox'
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'

// The WebAuthn Level 3 JSON forms (API.md §14), as the browser's PublicKeyCredential.toJSON() and
// @simplewebauthn/browser make them. Only their outline is checked here; @simplewebauthn/server
// checks the contents. Unknown members are allowed, as WebAuthn adds them over time (an extension's
// output, a new hint) and a browser that sends one must still work.

const Base64Url = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$', description })
const CredentialId = Base64Url(1366, 'The credential id, base64url')

const ResponseOutline = {
  id: CredentialId,
  rawId: CredentialId,
  type: Type.Literal('public-key'),
  clientExtensionResults: Type.Object({}, { additionalProperties: true }),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
}

export const RegistrationResponse = Type.Unsafe<RegistrationResponseJSON>(Type.Object({
  ...ResponseOutline,
  response: Type.Object({
    clientDataJSON: Base64Url(4096, 'base64url of the client data the browser signed'),
    attestationObject: Base64Url(16384, 'base64url of the CBOR attestation object'),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 })),
  }, { additionalProperties: true }),
}, { additionalProperties: true, description: 'RegistrationResponseJSON (WebAuthn L3): what navigator.credentials.create() answered, as JSON' }))

export const AuthenticationResponse = Type.Unsafe<AuthenticationResponseJSON>(Type.Object({
  ...ResponseOutline,
  response: Type.Object({
    clientDataJSON: Base64Url(4096, 'base64url of the client data the browser signed'),
    authenticatorData: Base64Url(4096, 'base64url of the authenticator data'),
    signature: Base64Url(1024, 'base64url of the signature'),
    userHandle: Type.Optional(Type.String({ maxLength: 128 })),
  }, { additionalProperties: true }),
}, { additionalProperties: true, description: 'AuthenticationResponseJSON (WebAuthn L3): what navigator.credentials.get() answered, as JSON' }))

const ExampleRegistration = {
  id: 'Xq3jB0r5x1hN2bY8pVq0wA',
  rawId: 'Xq3jB0r5x1hN2bY8pVq0wA',
  type: 'public-key',
  response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0', attestationObject: 'o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YQ', transports: ['internal', 'hybrid'] },
  clientExtensionResults: {},
  authenticatorAttachment: 'platform',
}

const ExampleAuthentication = {
  id: 'Xq3jB0r5x1hN2bY8pVq0wA',
  rawId: 'Xq3jB0r5x1hN2bY8pVq0wA',
  type: 'public-key',
  response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0', authenticatorData: 'SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ', signature: 'MEUCIQDx', userHandle: 'q2kVd0r5nN2bY8pVq0wAXq3jB0r5x1hN2bY8pVq0wA' },
  clientExtensionResults: {},
  authenticatorAttachment: 'platform',
}

const PasskeyName = Type.String({ minLength: 1, maxLength: 80, description: 'A name to recognise it by', examples: ['Work laptop'] })

export const RegisterPasskeyBody = Type.Object({
  response: RegistrationResponse,
  name: Type.Optional(PasskeyName),
}, { additionalProperties: false, examples: [{ response: ExampleRegistration, name: 'Work laptop' }] })

export const RenamePasskeyBody = Type.Object({ name: PasskeyName }, { additionalProperties: false, examples: [{ name: 'Work laptop' }] })

export const PasskeyLoginOptionsBody = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254, description: 'Whose passkeys to offer; without it the browser offers every passkey it holds for this site', examples: ['ada@example.com'] })),
}, { additionalProperties: false, examples: [{}, { email: 'ada@example.com' }] })

export const PasskeyLoginBody = Type.Object({
  response: AuthenticationResponse,
}, { additionalProperties: false, examples: [{ response: ExampleAuthentication }] })

export const MfaOptionsBody = Type.Object({
  mfa_token: Type.String({ minLength: 1, maxLength: 256, description: 'From the `mfa_required` answer of `POST /login`', examples: ['r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo'] }),
}, { additionalProperties: false, examples: [{ mfa_token: 'r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo' }] })

const Descriptor = Type.Object({
  id: Type.String({ description: 'A credential id, base64url' }),
  type: Type.String({ description: 'Always `public-key`' }),
  transports: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: true })

export const CreationOptionsSchema = Type.Object({
  challenge: Type.String({ description: 'base64url; single-use, valid 5 minutes' }),
  rp: Type.Object({ id: Type.Optional(Type.String()), name: Type.String() }, { additionalProperties: true }),
  user: Type.Object({ id: Type.String({ description: 'The WebAuthn user handle: opaque, not the user id' }), name: Type.String(), displayName: Type.String() }, { additionalProperties: true }),
  pubKeyCredParams: Type.Array(Type.Object({ type: Type.String(), alg: Type.Integer() }, { additionalProperties: true })),
  timeout: Type.Optional(Type.Integer()),
  excludeCredentials: Type.Optional(Type.Array(Descriptor, { description: 'Your passkeys already registered: the browser will not make a second one on the same authenticator' })),
  authenticatorSelection: Type.Optional(Type.Object({}, { additionalProperties: true })),
  attestation: Type.Optional(Type.String()),
  extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  hints: Type.Optional(Type.Array(Type.String())),
}, {
  $id: 'PasskeyCreationOptions',
  additionalProperties: true,
  description: 'PublicKeyCredentialCreationOptionsJSON (WebAuthn L3): pass it to navigator.credentials.create() ' +
    '(PublicKeyCredential.parseCreationOptionsFromJSON, or startRegistration of @simplewebauthn/browser)',
})

export const RequestOptionsSchema = Type.Object({
  challenge: Type.String({ description: 'base64url; single-use, valid 5 minutes' }),
  rpId: Type.Optional(Type.String()),
  timeout: Type.Optional(Type.Integer()),
  allowCredentials: Type.Optional(Type.Array(Descriptor, { description: 'The passkeys that may answer; absent: any passkey the browser holds for this site (discoverable)' })),
  userVerification: Type.Optional(Type.String()),
  extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  hints: Type.Optional(Type.Array(Type.String())),
}, {
  $id: 'PasskeyRequestOptions',
  additionalProperties: true,
  description: 'PublicKeyCredentialRequestOptionsJSON (WebAuthn L3): pass it to navigator.credentials.get() ' +
    '(PublicKeyCredential.parseRequestOptionsFromJSON, or startAuthentication of @simplewebauthn/browser)',
})
