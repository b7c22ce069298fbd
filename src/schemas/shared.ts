import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { API_KEY_SCOPES } from '../repositories/api-keys.js'
import { EVENT_TYPES } from '../repositories/events.js'

// Shared shapes, each added once with app.addSchema and referenced by $id, so the OpenAPI
// document has one named component instead of inlined copies.

/**
 * A `$ref` to a registered schema that keeps the static type (TypeBox 0.34 deprecated
 * Type.Ref(schema)). As a response, `description` becomes the response's description.
 */
export const ref = <T extends TSchema>(schema: T, description?: string) =>
  Type.Unsafe<Static<T>>({ ...Type.Ref(schema.$id!), ...(description && { description }) })

/** A string enum as `{type: string, enum: [...]}`: plain JSON Schema, readable in OpenAPI. */
export const StringEnum = <T extends string[]>(values: [...T], options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...options })

export const Id = Type.Integer({ minimum: 1, description: 'Positive integer id', examples: [42] })
// Repositories hand out Date objects; the response serializer writes them as ISO 8601 strings.
export const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time', description: 'ISO 8601, UTC', examples: ['2026-11-22T10:00:00.000Z'] })
export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Stored lower-case', examples: ['ada@example.com'] })
export const Name = Type.String({ minLength: 1, maxLength: 80, examples: ['Ada Lovelace'] })
export const Password = Type.String({ minLength: 8, maxLength: 128, examples: ['correct horse battery staple'] })
export const Role = StringEnum(['user', 'admin'], { examples: ['user'] })

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, examples: [401] }),
  error: Type.String({ description: 'HTTP reason phrase', examples: ['Unauthorized'] }),
  code: Type.String({ description: 'Stable, lower_snake error code (see the API description)', examples: ['token_expired'] }),
  message: Type.String({ description: 'Human-readable; may change', examples: ['The token has expired'] }),
  details: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'JSON pointer into the request part', examples: ['/email'] }),
    message: Type.String({ examples: ['must match format "email"'] }),
  }, { additionalProperties: false }), { description: 'Present on validation_error' })),
}, { $id: 'Error', additionalProperties: false, description: 'Every error response has this shape' })

export const UserSchema = Type.Object({
  id: Id,
  email: Email,
  name: Name,
  role: Role,
  // One schema with two types, not anyOf: the serializer then writes a Date as ISO 8601
  // without having to guess which branch a Date object belongs to.
  email_verified_at: Type.Unsafe<Date | null>({
    type: ['string', 'null'],
    format: 'date-time',
    description: 'When the user confirmed this email through a mailed link; null until then, and again after an email change',
    examples: ['2026-11-22T10:05:00.000Z'],
  }),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'User', additionalProperties: false })
export type User = Static<typeof UserSchema>

export const TokenPairSchema = Type.Object({
  access_token: Type.String({ description: 'JWT for the Authorization header', examples: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…'] }),
  refresh_token: Type.Optional(Type.String({
    description: 'JWT for POST /refresh; single use. Absent in browser mode (`POST /login?refresh=cookie` and a cookie refresh): ' +
      'it is then only in the `__Host-refresh` cookie, which no script can read.',
    examples: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…'],
  })),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires', examples: [900] }),
  refresh_expires_in: Type.Integer({ description: 'Seconds until the refresh token expires', examples: [1209600] }),
  user: ref(UserSchema),
}, { $id: 'TokenPair', additionalProperties: false, description: 'A fresh access and refresh token of one session' })

export const MfaStatusSchema = Type.Object({
  totp: Type.Boolean({ description: 'A TOTP authenticator is on: logins need its code (or a recovery code) after the password' }),
  passkeys: Type.Integer({ minimum: 0, description: 'Passkeys registered (API.md §14): each signs in alone, and is a second factor after the password when TOTP is on', examples: [1] }),
  recovery_codes_left: Type.Integer({ minimum: 0, maximum: 10, description: 'Unused recovery codes; 0 while TOTP is off', examples: [10] }),
}, { $id: 'MfaStatus', additionalProperties: false, description: 'The second factors of the account', examples: [{ totp: true, passkeys: 1, recovery_codes_left: 10 }] })
export type MfaStatus = Static<typeof MfaStatusSchema>

export const MeSchema = Type.Object({ ...UserSchema.properties, mfa: ref(MfaStatusSchema) },
  { $id: 'Me', additionalProperties: false, description: 'The current user, with their second factors' })

export const SECOND_FACTOR_METHODS = ['totp', 'recovery_code', 'passkey'] as const

export const MfaChallengeSchema = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({
    description: 'Single-use: send it to `POST /login/mfa` with a code within `expires_in` seconds. 5 wrong codes spend it; ' +
      'so do a password change or reset meanwhile',
    examples: ['r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo'],
  }),
  methods: Type.Array(StringEnum([...SECOND_FACTOR_METHODS]), {
    description: 'What `POST /login/mfa` accepts for this account: `totp` (`code`), `recovery_code`, and `passkey` (`passkey_response`, ' +
      'with options from `POST /login/mfa/options`) when the account has a passkey',
    examples: [['totp', 'recovery_code', 'passkey']],
  }),
  expires_in: Type.Integer({ description: 'Seconds the `mfa_token` lives', examples: [300] }),
}, {
  $id: 'MfaChallenge',
  additionalProperties: false,
  description: 'The password is right and the account has a second factor: no tokens yet; finish with `POST /login/mfa`',
  examples: [{ mfa_required: true, mfa_token: 'r4Xb0m1vKq2Tn9WcZp7yHs3Ld8Ue6Gf5Ja0Ik1Ql2Mo', methods: ['totp', 'recovery_code'], expires_in: 300 }],
})

export const PasskeySchema = Type.Object({
  id: Type.Integer({ minimum: 1, examples: [3] }),
  name: Type.String({ maxLength: 80, description: 'Yours to choose; by default the browser and system it was made on', examples: ['Chrome on Linux'] }),
  created_at: Type.Unsafe<Date>({ ...Timestamp }),
  last_used_at: Type.Union([Type.Unsafe<Date>({ ...Timestamp }), Type.Null()], { description: 'The last sign-in or second factor with it; null: never used' }),
  backed_up: Type.Boolean({ description: 'Synced by its provider (iCloud Keychain, Google Password Manager…): survives the loss of one device' }),
  transports: Type.Array(Type.String(), { description: 'How the browser reaches it (WebAuthn AuthenticatorTransport): `internal`, `hybrid`, `usb`, `nfc`, `ble`', examples: [['internal', 'hybrid']] }),
}, { $id: 'Passkey', additionalProperties: false, description: 'A passkey of yours (API.md §14); never its key or credential id' })
export type Passkey = Static<typeof PasskeySchema>

export const TotpSetupSchema = Type.Object({
  secret: Type.String({ description: 'The TOTP secret, base32 (160 bits), for typing into an authenticator app by hand', examples: ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'] }),
  otpauth_url: Type.String({
    description: 'The Key URI an authenticator app scans (SHA-1, 6 digits, 30 s, issuer `boardkit`)',
    examples: ['otpauth://totp/boardkit:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=boardkit'],
  }),
  qr_code: Type.String({ description: '`otpauth_url` as a QR code: an SVG image in a `data:` URL, for an `<img src>`', examples: ['data:image/svg+xml;base64,PHN2ZyB4bWxucz0…'] }),
}, { $id: 'TotpSetup', additionalProperties: false, description: 'A new TOTP secret, not active until `POST /mfa/totp/enable` gets a code of it' })

export const RecoveryCodesSchema = Type.Object({
  recovery_codes: Type.Array(Type.String({ examples: ['7k2m-q9xd-4hwe-pt3a'] }), {
    minItems: 10,
    maxItems: 10,
    description: 'Shown this once: each logs in once in place of a TOTP code (`POST /login/mfa` with `recovery_code`). ' +
      'Case, spaces and hyphens do not matter',
  }),
}, { $id: 'RecoveryCodes', additionalProperties: false, description: '10 single-use recovery codes; any older ones are void' })

export const UserSummarySchema = Type.Object({ id: Id, name: Name }, { $id: 'UserSummary', additionalProperties: false, description: 'A board\'s author' })

export const BoardTitle = Type.String({ minLength: 1, maxLength: 100, examples: ['Hello, board'] })
export const BoardContent = Type.String({ maxLength: 10_000, examples: ['First post.'] })

export const BoardSchema = Type.Object({
  id: Id,
  title: BoardTitle,
  content: BoardContent,
  author: ref(UserSummarySchema),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'Board', additionalProperties: false })
export type Board = Static<typeof BoardSchema>

const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as `cursor` to get the next page; null on the last page. Opaque: do not build or parse it.',
  examples: ['djE6NDI'],
})

export const UserPageSchema = Type.Object({ items: Type.Array(ref(UserSchema)), next_cursor: NextCursor },
  { $id: 'UserPage', additionalProperties: false, description: 'One page of users, by id' })
export const BoardPageSchema = Type.Object({ items: Type.Array(ref(BoardSchema)), next_cursor: NextCursor },
  { $id: 'BoardPage', additionalProperties: false, description: 'One page of boards, newest first' })

export const AcceptedSchema = Type.Object({ status: Type.Literal('accepted') },
  { $id: 'Accepted', additionalProperties: false, description: 'Taken in; any mail it causes is sent afterwards', examples: [{ status: 'accepted' }] })

/** A password-reset or email-verification token, as taken from the `#token=` of a mailed link. */
export const OneTimeToken = Type.String({ minLength: 1, maxLength: 256, description: 'The `token` from the fragment of the mailed link', examples: ['q1N0q2pVb2Vr…'] })

export const SessionId = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  description: 'A session id (the `sid` claim of its tokens): a lower-case UUID',
  examples: ['019ad2f4-7c1e-7a3b-8f00-2b6c1d9e4a10'],
})

const NullableDevice = Type.Union([Type.String({ maxLength: 255 }), Type.Null()], {
  description: 'The user agent named as people name devices (browser and major version on a system), or the raw user agent when it names neither; null without one',
  examples: ['Chrome 156 on Linux'],
})

export const SessionSchema = Type.Object({
  id: SessionId,
  created_at: Type.Unsafe<Date>({ ...Timestamp, description: 'The login' }),
  last_used_at: Type.Unsafe<Date>({ ...Timestamp, description: 'The last login or refresh (not every request)' }),
  expires_at: Type.Unsafe<Date>({ ...Timestamp, description: 'When it can no longer be refreshed: its refresh token\'s expiry, capped by SESSION_MAX_AGE' }),
  user_agent: Type.Union([Type.String({ maxLength: 255 }), Type.Null()], { description: 'User-Agent at the login or the last refresh', examples: ['Mozilla/5.0 (X11; Linux x86_64)'] }),
  device: NullableDevice,
  ip: Type.Union([Type.String({ maxLength: 45 }), Type.Null()], { description: 'Client address at the login or the last refresh', examples: ['203.0.113.7'] }),
  current: Type.Boolean({ description: 'True for the session of the access token making this request' }),
}, { $id: 'Session', additionalProperties: false, description: 'One login and its refreshes: every token of it carries its id as `sid`' })
export type Session = Static<typeof SessionSchema>

export const SessionPageSchema = Type.Object({ items: Type.Array(ref(SessionSchema)), next_cursor: NextCursor },
  { $id: 'SessionPage', additionalProperties: false, description: 'One page of live sessions, most recently used first' })


const NullableText = (maxLength: number, description: string) => Type.Union([Type.String({ maxLength }), Type.Null()], { description })

export const SecurityEventSchema = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  type: Type.String({ description: `What happened (API.md §15): ${EVENT_TYPES.map((type) => `\`${type}\``).join(', ')}`, examples: ['login.succeeded'] }),
  occurred_at: Type.Unsafe<Date>({ ...Timestamp, description: 'By the database clock' }),
  actor_id: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'Who did it; null when nobody was signed in (a login, a reset link, the operator\'s CLI)' }),
  subject_user_id: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'Whose account it concerns; null for none (a signing key, a login for an unknown email)' }),
  session_id: NullableText(36, 'The session that did it (for a login, the session it started)'),
  ip: NullableText(45, 'Client address (the TRUST_PROXY rule)'),
  user_agent: NullableText(255, 'User-Agent of the request'),
  device: NullableDevice,
  request_id: NullableText(64, 'The request id, as in the log lines of that request'),
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'What changed, by type (e.g. `{"fields": ["email"]}`, `{"from": "user", "to": "admin"}`, ' +
    '`{"email": "…", "reason": "wrong_password"}`); never a password, token or code' }),
  count: Type.Integer({ minimum: 1, description: 'How many attempts this row stands for: `login.failed` and `login.locked` are one row per email and minute, counted' }),
}, { $id: 'SecurityEvent', additionalProperties: false, description: 'One entry of the audit log' })


export const SecurityEventPageSchema = Type.Object({ items: Type.Array(ref(SecurityEventSchema)), next_cursor: NextCursor },
  { $id: 'SecurityEventPage', additionalProperties: false, description: 'One page of security events, newest first' })

const ApiKeyScope = StringEnum([...API_KEY_SCOPES])
const nullableTime = (description: string) => Type.Union([Type.Unsafe<Date>({ ...Timestamp }), Type.Null()], { description })

export const ApiKeySchema = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  name: Type.String({ maxLength: 80 }),
  scopes: Type.Array(ApiKeyScope),
  prefix: Type.String({ pattern: '^[a-z2-7]{12}$', description: 'The key\'s public part: its token starts with `bk_<prefix>_`' }),
  created_at: Type.Unsafe<Date>({ ...Timestamp }),
  expires_at: nullableTime('When it stops working; null: when revoked'),
  last_used_at: nullableTime('Its last use, to the minute; null: never used'),
}, { $id: 'ApiKey', additionalProperties: false, description: 'A personal access token, without its secret' })

export const NewApiKeySchema = Type.Object({
  ...ApiKeySchema.properties,
  token: Type.String({
    pattern: '^bk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$',
    description: 'The token, shown this once (only its hash is kept): `Authorization: Bearer bk_…`',
    examples: ['bk_k3n2q7xw5a9b_Qm9hcmRraXQgaXMgbm90IGEgc2VjcmV0IGJ1dCB0aGlzIGlz'],
  }),
}, { $id: 'NewApiKey', additionalProperties: false, description: 'A new key, with its token' })

export const ApiKeyPageSchema = Type.Object({ items: Type.Array(ref(ApiKeySchema)), next_cursor: NextCursor },
  { $id: 'ApiKeyPage', additionalProperties: false, description: 'Your live keys, newest first' })

/** Schemas registered once with app.addSchema; they become the document's named components. */
export const sharedSchemas = [ErrorSchema, UserSchema, TokenPairSchema, MfaStatusSchema, MeSchema, MfaChallengeSchema, PasskeySchema, TotpSetupSchema,
  RecoveryCodesSchema, UserSummarySchema, BoardSchema, UserPageSchema, BoardPageSchema, AcceptedSchema, SessionSchema, SessionPageSchema,
  SecurityEventSchema, SecurityEventPageSchema, ApiKeySchema, NewApiKeySchema, ApiKeyPageSchema]
