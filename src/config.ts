import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

// The configuration is parsed once, from a plain string map (process.env at start, a literal in
// tests). Nothing else in the code base reads process.env.

/** The JWT_SECRET placeholder shipped in .env.example: refused in production. */
export const EXAMPLE_JWT_SECRET = 'change-me-to-a-random-string-of-at-least-32-bytes'
const MIN_SECRET_BYTES = 32
/** The JWT_KEY_ENCRYPTION_SECRET placeholder shipped in .env.example: refused in production. */
export const EXAMPLE_KEY_ENCRYPTION_SECRET = 'change-me-to-another-random-string-of-32-bytes-or-more'
/**
 * Outside production, with no JWT_KEY_ENCRYPTION_SECRET, private keys are encrypted under this
 * fixed value: unlike a per-process random one, every instance and every restart can read them.
 * Production refuses it, so keys stored with it never protect anything that matters.
 */
export const DEVELOPMENT_KEY_ENCRYPTION_SECRET = 'boardkit-development-only-key-encryption-secret'

const Duration = (fallback: string) =>
  Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', default: fallback, description: 'e.g. 900, 15m, 14d' })
const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
/** A per-minute (or per-window) count; 0 turns the limit off (API.md §6). */
const Limit = (fallback: number) => Type.Integer({ minimum: 0, default: fallback })

/** The samplers of the OpenTelemetry specification (OTEL_TRACES_SAMPLER), jaeger's and xray's aside. */
export const TRACES_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const
/** Shortest METRICS_TOKEN accepted: a guessable token would publish the API's traffic to anyone. */
const MIN_METRICS_TOKEN_BYTES = 32

const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Port(3000),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)), { default: 'info' }),
  DATABASE_URL: Type.String({ pattern: '^mysql://', default: 'mysql://root@127.0.0.1:3306/boardkit' }),
  DB_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DB_CONNECT_TIMEOUT: Duration('1s'),
  DB_QUERY_TIMEOUT: Duration('1s'),
  BODY_DISCARD_LIMIT: Type.Integer({ minimum: 0, default: 16 * 1024 * 1024, description: 'Bytes of an oversized body read and discarded before its 413' }),
  BODY_DISCARD_TIMEOUT: Duration('5s'),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'boardkit' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'boardkit-api' }),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('EdDSA'), Type.Literal('ES256')], { default: 'HS256' }),
  JWT_KEY_ENCRYPTION_SECRET: Type.Optional(Type.String()),
  JWT_KEY_ACTIVATION_DELAY: Duration('10m'),
  ACCESS_TOKEN_TTL: Duration('15m'),
  REFRESH_TOKEN_TTL: Duration('14d'),
  REFRESH_REUSE_GRACE: Duration('10s'),
  SESSION_MAX_AGE: Duration('30d'),
  RATE_LIMIT_AUTH: Limit(10),
  RATE_LIMIT_REFRESH: Limit(60),
  RATE_LIMIT_GLOBAL: Limit(1000),
  LOGIN_MAX_FAILURES: Limit(10),
  LOGIN_LOCKOUT_WINDOW: Duration('15m'),
  BLOCKLIST_PURGE_INTERVAL: Duration('10m'),
  CORS_ORIGINS: Type.String({ default: '', description: 'Comma-separated origins allowed cross-origin; empty: none' }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'The proxies in front: a hop count, or their addresses/CIDRs (comma-separated); false: none' }),
  PASSWORD_RESET_TTL: Duration('30m'),
  EMAIL_VERIFICATION_TTL: Duration('24h'),
  REQUIRE_EMAIL_VERIFICATION: Type.Boolean({ default: false, description: 'Refuse logins (403) until the email is verified' }),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://[^/?#]', description: 'smtp://user:pass@host:587 or smtps://…:465' })),
  MAIL_FROM: Type.String({ minLength: 3, default: 'boardkit <no-reply@localhost>' }),
  MAIL_RETRY_FOR: Duration('24h'),
  OUTBOX_RETRY_BASE: Duration('2s'),
  OUTBOX_POLL_INTERVAL: Duration('1s'),
  OUTBOX_LEASE: Duration('2m'),
  WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://[^/?#]', description: 'Where every security event is POSTed (Standard Webhooks); https:// in production' })),
  WEBHOOK_SECRET: Type.Optional(Type.String({ pattern: '^(whsec_)?[A-Za-z0-9+/]+={0,2}$', description: 'The signing secret: base64 of 24-64 random bytes, optionally prefixed whsec_' })),
  AUDIT_RETENTION: Duration('400d'),
  // Unset: true in production, false elsewhere (loadConfig below).
  MFA_REQUIRED_FOR_ADMINS: Type.Optional(Type.Boolean({ description: 'Admin rights only from a login with a second factor (403 mfa_required otherwise)' })),
  APP_URL: Type.String({ pattern: '^https?://[^/?#]+(/[^?#]*)?$', default: 'http://127.0.0.1:3000', description: 'Where the links in mails point' }),
  // API.md §11: the per-IP counts shared by every instance. Unset: each process counts alone.
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, default: 'boardkit:rate-limit:' }),
  // API.md §17: sign in with an OpenID Connect provider. Checked in loadConfig (parseOidcProviders).
  OIDC_PROVIDERS: Type.String({ default: '[]', description: 'JSON list of {id, issuer, client_id, client_secret, scopes?, name?}; [] or empty: none' }),
  OIDC_REDIRECT_URIS: Type.String({ default: '', description: 'Comma-separated URLs a sign-in may return to (exact match); empty: none' }),
  OIDC_TIMEOUT: Duration('5s'),
  // API.md §14: passkeys. Checked in loadConfig (parseWebAuthn).
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ description: 'The domain passkeys are bound to; unset: the host of APP_URL (localhost for an IP address)' })),
  WEBAUTHN_ORIGINS: Type.Optional(Type.String({ description: 'Comma-separated origins of the pages that use passkeys; unset: APP_URL\'s origin (on localhost for an IP address)' })),
  WEBAUTHN_RP_NAME: Type.String({ minLength: 1, maxLength: 64, default: 'boardkit', description: 'The name a browser shows when it asks for a passkey' }),
  // API.md §18: GET /metrics on a listener of its own, or on the API's port behind a token;
  // neither: no metrics are collected and /metrics is a 404.
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'Port of the metrics listener (0: any free port)' })),
  METRICS_TOKEN: Type.Optional(Type.String({ description: 'Bearer token of GET /metrics, at least 32 bytes' })),
  // Traces (API.md §18), under the standard OpenTelemetry names. Without an endpoint the SDK is
  // never loaded (src/server.ts); the exporter also reads the OTEL_EXPORTER_OTLP_* variables it
  // alone knows (headers, timeout, a traces-only endpoint) from the environment itself.
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^/?#]', description: 'Base URL of an OTLP/HTTP receiver; spans go to <it>/v1/traces' })),
  OTEL_EXPORTER_OTLP_PROTOCOL: Type.Literal('http/json', { default: 'http/json' }),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'boardkit' }),
  OTEL_TRACES_SAMPLER: Type.Union(TRACES_SAMPLERS.map((name) => Type.Literal(name)), { default: 'parentbased_always_on' }),
  OTEL_TRACES_SAMPLER_ARG: Type.Optional(Type.String({ pattern: '^(0(\\.\\d+)?|1(\\.0+)?)$', description: 'The ratio of traceidratio samplers, 0 to 1' })),
  OTEL_BSP_SCHEDULE_DELAY: Type.Integer({ minimum: 1, default: 5000, description: 'Milliseconds between two exports of the ended spans' }),
})
type Env = Static<typeof EnvSchema>

/** Every variable the configuration reads (documented in .env.example). */
export const CONFIG_KEYS = Object.keys(EnvSchema.properties)
/** The schema itself: docs/operations.md's configuration table is generated from it (npm run docs:config). */
export const CONFIG_SCHEMA = EnvSchema

type DurationKey = 'DB_CONNECT_TIMEOUT' | 'DB_QUERY_TIMEOUT' | 'BODY_DISCARD_TIMEOUT' | 'ACCESS_TOKEN_TTL' | 'REFRESH_TOKEN_TTL' | 'REFRESH_REUSE_GRACE'
  | 'SESSION_MAX_AGE' | 'LOGIN_LOCKOUT_WINDOW' | 'BLOCKLIST_PURGE_INTERVAL' | 'PASSWORD_RESET_TTL' | 'EMAIL_VERIFICATION_TTL' | 'JWT_KEY_ACTIVATION_DELAY'
  | 'MAIL_RETRY_FOR' | 'OUTBOX_RETRY_BASE' | 'OUTBOX_POLL_INTERVAL' | 'OUTBOX_LEASE' | 'AUDIT_RETENTION' | 'OIDC_TIMEOUT'

/** Durations are milliseconds; everything else keeps its environment name and parsed type. */
export type Config = Readonly<Omit<Env, DurationKey | 'JWT_SECRET' | 'CORS_ORIGINS' | 'JWT_KEY_ENCRYPTION_SECRET' | 'TRUST_PROXY' | 'MFA_REQUIRED_FOR_ADMINS'
  | 'OIDC_PROVIDERS' | 'OIDC_REDIRECT_URIS' | 'OTEL_TRACES_SAMPLER_ARG' | 'WEBAUTHN_RP_ID' | 'WEBAUTHN_ORIGINS'> & Record<DurationKey, number> & {
  /** The ratio of the traceidratio samplers (1 when unset: every trace). */
  OTEL_TRACES_SAMPLER_ARG: number
  /** Fastify's `trustProxy` (proxy-addr): false, a hop count, or the proxies' addresses and CIDRs. */
  TRUST_PROXY: false | number | readonly string[]
  CORS_ORIGINS: readonly string[]
  JWT_KEY_ENCRYPTION_SECRET: string
  JWT_SECRET: string
  /** True when no secret was configured and one was generated for this process only. */
  JWT_SECRET_GENERATED: boolean
  MFA_REQUIRED_FOR_ADMINS: boolean
  OIDC_PROVIDERS: readonly OidcProvider[]
  OIDC_REDIRECT_URIS: readonly string[]
  /** The relying party id passkeys are made for (a domain, never an IP address). */
  WEBAUTHN_RP_ID: string
  /** The origins a passkey's answer may come from, each on WEBAUTHN_RP_ID or a subdomain of it. */
  WEBAUTHN_ORIGINS: readonly string[]
}>

/** One OpenID Connect provider we accept sign-ins from (API.md §17). */
export interface OidcProvider {
  /** Our name for it, in the URLs: /auth/oidc/:id. */
  id: string
  /** What the demo's button says ("Sign in with …"); the id when not given. */
  name: string
  /** The issuer identifier; its /.well-known/openid-configuration is read (OpenID Connect Discovery 1.0 §4). */
  issuer: string
  client_id: string
  client_secret: string
  /** Always with `openid`; default `openid email profile`. */
  scopes: readonly string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** "15m" → 900000. A bare number is seconds, as in the JWT world. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
  if (!match) throw new ConfigError(`not a duration: ${text}`)
  return Number(match[1]) * UNIT_MS[match[2] ?? 's']!
}

export function loadConfig(source: Record<string, string | undefined>): Config {
  // Only our own keys, and empty strings count as unset (a blank line in .env).
  const raw: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]?.trim()
    if (value) raw[key] = value
  }
  // Value.Convert would turn "80.5" or "1e3" into an integer; a count must be written as one.
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    if ((schema as { type?: string }).type === 'integer' && raw[key] !== undefined && !/^\d+$/.test(raw[key])) {
      throw new ConfigError(`${key}: must be a whole number (got ${JSON.stringify(raw[key])})`)
    }
  }
  // Only the JSON flavour of OTLP/HTTP is installed: the others would need exporters (gRPC,
  // protobuf) that the SDK would load in vain. Said before the schema's terser "expected".
  if (raw.OTEL_EXPORTER_OTLP_PROTOCOL !== undefined && raw.OTEL_EXPORTER_OTLP_PROTOCOL !== 'http/json') {
    throw new ConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL: only http/json is supported (got ${JSON.stringify(raw.OTEL_EXPORTER_OTLP_PROTOCOL)})`)
  }
  const env = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw)) as Env
  const [firstError] = Value.Errors(EnvSchema, env)
  if (firstError) {
    const key = firstError.path.slice(1) || 'configuration'
    const choices = firstError.schema.anyOf?.map((option: { const: string }) => option.const)
    const message = choices ? `must be one of ${choices.join(', ')}` : firstError.message.toLowerCase()
    throw new ConfigError(`${key}: ${message} (got ${JSON.stringify(raw[key] ?? null)})`)
  }

  for (const url of databaseUrls(env.DATABASE_URL)) {
    try {
      if (!new URL(url).hostname) throw new Error('no host')
    } catch {
      throw new ConfigError(`DATABASE_URL: not a mysql:// URL with one or more comma-separated hosts (got ${JSON.stringify(env.DATABASE_URL.replace(/\/\/[^@/]*@/, '//***@'))})`)
    }
  }

  const secret = env.JWT_SECRET
  if (env.NODE_ENV === 'production') {
    if (!secret) throw new ConfigError('JWT_SECRET: required in production')
    if (secret === EXAMPLE_JWT_SECRET) throw new ConfigError('JWT_SECRET: still the .env.example placeholder; set a random secret')
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new ConfigError(`JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes in production`)
  } else if (secret && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes (leave it unset outside production to generate one)`)
  }

  const keySecret = env.JWT_KEY_ENCRYPTION_SECRET
  // It encrypts the TOTP secrets (API.md §13) under every algorithm, and the private signing keys
  // under EdDSA and ES256: the fixed development value would leave them as good as in clear.
  if (env.NODE_ENV === 'production') {
    if (!keySecret) throw new ConfigError('JWT_KEY_ENCRYPTION_SECRET: required in production (it encrypts the stored TOTP secrets and signing keys); at least 32 random bytes')
    if (keySecret === EXAMPLE_KEY_ENCRYPTION_SECRET) throw new ConfigError('JWT_KEY_ENCRYPTION_SECRET: still the .env.example placeholder; set a random secret')
    if (Buffer.byteLength(keySecret) < MIN_SECRET_BYTES) throw new ConfigError(`JWT_KEY_ENCRYPTION_SECRET: must be at least ${MIN_SECRET_BYTES} bytes in production`)
  } else if (keySecret && Buffer.byteLength(keySecret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`JWT_KEY_ENCRYPTION_SECRET: must be at least ${MIN_SECRET_BYTES} bytes`)
  }

  if (env.NODE_ENV === 'production') {
    // API.md §12: 0 turns a limit off, which only test and benchmark harnesses may do.
    for (const key of ['RATE_LIMIT_AUTH', 'RATE_LIMIT_REFRESH', 'RATE_LIMIT_GLOBAL', 'LOGIN_MAX_FAILURES'] as const) {
      if (env[key] === 0) throw new ConfigError(`${key}: 0 turns this abuse limit off, which production refuses; keep the default (${EnvSchema.properties[key].default}) or set a stricter one`)
    }
    // The events carry who signed in from where: never in clear over the network.
    if (env.WEBHOOK_URL && !env.WEBHOOK_URL.startsWith('https://')) throw new ConfigError('WEBHOOK_URL: must be https:// in production')
  }
  if (env.WEBHOOK_URL) {
    if (!env.WEBHOOK_SECRET) throw new ConfigError('WEBHOOK_SECRET: required with WEBHOOK_URL (base64 of 24-64 random bytes, e.g. whsec_ + `openssl rand -base64 32`)')
    const bytes = Buffer.from(env.WEBHOOK_SECRET.replace(/^whsec_/, ''), 'base64').length
    if (bytes < 24 || bytes > 64) throw new ConfigError(`WEBHOOK_SECRET: must be base64 of 24-64 bytes (got ${bytes})`)
  }

  // Never echoed: the value is a secret.
  if (env.METRICS_TOKEN !== undefined && Buffer.byteLength(env.METRICS_TOKEN) < MIN_METRICS_TOKEN_BYTES) {
    throw new ConfigError(`METRICS_TOKEN: must be at least ${MIN_METRICS_TOKEN_BYTES} bytes`)
  }
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT) {
    throw new ConfigError(`METRICS_PORT: must differ from PORT (both ${env.PORT}); leave it unset to serve /metrics on PORT with METRICS_TOKEN`)
  }

  return Object.freeze({
    ...env,
    OTEL_TRACES_SAMPLER_ARG: env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG),
    TRUST_PROXY: parseTrustProxy(env.TRUST_PROXY),
    JWT_KEY_ENCRYPTION_SECRET: keySecret ?? DEVELOPMENT_KEY_ENCRYPTION_SECRET,
    JWT_KEY_ACTIVATION_DELAY: parseDuration(env.JWT_KEY_ACTIVATION_DELAY),
    DB_CONNECT_TIMEOUT: parseDuration(env.DB_CONNECT_TIMEOUT),
    DB_QUERY_TIMEOUT: parseDuration(env.DB_QUERY_TIMEOUT),
    BODY_DISCARD_TIMEOUT: parseDuration(env.BODY_DISCARD_TIMEOUT),
    LOGIN_LOCKOUT_WINDOW: parseDuration(env.LOGIN_LOCKOUT_WINDOW),
    BLOCKLIST_PURGE_INTERVAL: parseDuration(env.BLOCKLIST_PURGE_INTERVAL),
    CORS_ORIGINS: env.CORS_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean),
    ACCESS_TOKEN_TTL: parseDuration(env.ACCESS_TOKEN_TTL),
    REFRESH_TOKEN_TTL: parseDuration(env.REFRESH_TOKEN_TTL),
    REFRESH_REUSE_GRACE: parseDuration(env.REFRESH_REUSE_GRACE),
    SESSION_MAX_AGE: parseDuration(env.SESSION_MAX_AGE),
    PASSWORD_RESET_TTL: parseDuration(env.PASSWORD_RESET_TTL),
    EMAIL_VERIFICATION_TTL: parseDuration(env.EMAIL_VERIFICATION_TTL),
    MAIL_RETRY_FOR: parseDuration(env.MAIL_RETRY_FOR),
    OUTBOX_RETRY_BASE: parseDuration(env.OUTBOX_RETRY_BASE),
    OUTBOX_POLL_INTERVAL: parseDuration(env.OUTBOX_POLL_INTERVAL),
    OUTBOX_LEASE: parseDuration(env.OUTBOX_LEASE),
    AUDIT_RETENTION: parseDuration(env.AUDIT_RETENTION),
    OIDC_PROVIDERS: parseOidcProviders(env.OIDC_PROVIDERS),
    OIDC_REDIRECT_URIS: parseRedirectUris(env.OIDC_REDIRECT_URIS),
    OIDC_TIMEOUT: parseDuration(env.OIDC_TIMEOUT),
    ...parseWebAuthn(env.APP_URL, env.WEBAUTHN_RP_ID, env.WEBAUTHN_ORIGINS),
    // Links are APP_URL + a path: one trailing slash fewer, never two in a row.
    APP_URL: env.APP_URL.replace(/\/+$/, ''),
    JWT_SECRET: secret ?? randomBytes(48).toString('base64url'),
    JWT_SECRET_GENERATED: !secret,
    // PCI DSS 4 §8.4.1 and SOC 2 practice: administrative access needs a second factor. Off
    // outside production, so development and tests can use an admin without enrolling one.
    MFA_REQUIRED_FOR_ADMINS: env.MFA_REQUIRED_FOR_ADMINS ?? env.NODE_ENV === 'production',
  })
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])
/** A loopback host: where a local or test provider may speak plain http. */
export const isLoopbackHost = (hostname: string) => LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

const OIDC_PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,31}$/
const OIDC_PROVIDER_KEYS = new Set(['id', 'name', 'issuer', 'client_id', 'client_secret', 'scopes'])

/**
 * OIDC_PROVIDERS (API.md §17): a JSON list of `{id, issuer, client_id, client_secret, scopes?,
 * name?}`. The issuer must be https://, except on a loopback host (a provider on this machine, as
 * in the tests): an ID token fetched over plain http from anywhere else could be anyone's.
 */
export function parseOidcProviders (text: string): OidcProvider[] {
  const fail = (message: string): never => { throw new ConfigError(`OIDC_PROVIDERS: ${message}`) }
  let list: unknown
  try {
    list = JSON.parse(text.trim() || '[]')
  } catch {
    fail('not valid JSON (a list of {id, issuer, client_id, client_secret, scopes?})')
  }
  if (!Array.isArray(list)) return fail('must be a JSON list')
  const seen = new Set<string>()
  return list.map((entry: unknown, index): OidcProvider => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`entry ${index} is not an object`)
    const item = entry as Record<string, unknown>
    const unknown = Object.keys(item).find((key) => !OIDC_PROVIDER_KEYS.has(key))
    if (unknown) fail(`entry ${index}: unknown key ${JSON.stringify(unknown)}`)
    const { id, name, issuer, client_id: clientId, client_secret: clientSecret, scopes } = item
    if (typeof id !== 'string' || !OIDC_PROVIDER_ID.test(id)) return fail(`entry ${index}: id must be 1-32 of a-z, 0-9 and - (it goes in the URL)`)
    if (seen.has(id)) fail(`the id ${JSON.stringify(id)} is used twice`)
    seen.add(id)
    let url: URL
    try {
      url = new URL(String(issuer))
    } catch {
      return fail(`${id}: issuer is not a URL`)
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      fail(`${id}: issuer must be https:// (http:// only on a loopback host, for a local provider)`)
    }
    if (url.search || url.hash) fail(`${id}: issuer must have no query or fragment`)
    if (typeof clientId !== 'string' || !clientId) fail(`${id}: client_id is required`)
    if (typeof clientSecret !== 'string' || !clientSecret) fail(`${id}: client_secret is required`)
    if (name !== undefined && (typeof name !== 'string' || !name.trim() || name.length > 40)) fail(`${id}: name must be 1-40 characters`)
    if (scopes !== undefined && (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)))) {
      fail(`${id}: scopes must be a list of scope names`)
    }
    const scopeList = (scopes as string[] | undefined) ?? ['openid', 'email', 'profile']
    return Object.freeze({
      id,
      name: typeof name === 'string' ? name.trim() : id,
      issuer: String(issuer),
      client_id: clientId as string,
      client_secret: clientSecret as string,
      // openid makes it an OpenID Connect request: without it no ID token comes back.
      scopes: Object.freeze(scopeList.includes('openid') ? scopeList : ['openid', ...scopeList]),
    })
  })
}

/**
 * WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS (API.md §14), checked here because a mistake in them does
 * not fail loudly later: every passkey ceremony would fail in the browser (a SecurityError) or be
 * refused by the server (401), and passkeys made for a wrong RP ID never work after it is fixed.
 * A browser refuses an IP address as RP ID, so APP_URL's default (http://127.0.0.1:3000) gives
 * `localhost` and the same URL on localhost.
 */
export function parseWebAuthn (appUrl: string, rpIdSetting: string | undefined, originsSetting: string | undefined): { WEBAUTHN_RP_ID: string, WEBAUTHN_ORIGINS: string[] } {
  const app = new URL(appUrl)
  const isIpAddress = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[')
  if (isIpAddress(app.hostname)) app.hostname = 'localhost'
  const rpId = (rpIdSetting || app.hostname).trim().toLowerCase()
  if (isIpAddress(rpId) || !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(rpId)) {
    throw new ConfigError(`WEBAUTHN_RP_ID: ${JSON.stringify(rpId)} must be a domain name (browsers refuse IP addresses and ports), such as example.com`)
  }
  const origins = (originsSetting || app.origin).split(',').map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    let url: URL
    try {
      url = new URL(entry)
    } catch {
      throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(entry)} is not a URL`)
    }
    if (url.origin !== entry.replace(/\/$/, '')) throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(entry)} must be an origin alone (scheme, host and port: no path)`)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && url.hostname === 'localhost')) {
      throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(entry)} must be https:// (browsers offer passkeys over http only on localhost)`)
    }
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) {
      throw new ConfigError(`WEBAUTHN_ORIGINS: ${JSON.stringify(entry)} is not on WEBAUTHN_RP_ID ${JSON.stringify(rpId)} or a subdomain of it: browsers would refuse every passkey ceremony there`)
    }
    return url.origin
  })
  if (origins.length === 0) throw new ConfigError('WEBAUTHN_ORIGINS: at least one origin')
  return { WEBAUTHN_RP_ID: rpId, WEBAUTHN_ORIGINS: origins }
}

/**
 * OIDC_REDIRECT_URIS: where a sign-in may send the browser back to (with `#code=` in the URL). An
 * exact list, never a prefix or a pattern: an open redirect here would hand the exchange code to
 * whoever named the page.
 */
export function parseRedirectUris (text: string): string[] {
  return text.split(',').map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    let url: URL
    try {
      url = new URL(entry)
    } catch {
      throw new ConfigError(`OIDC_REDIRECT_URIS: ${JSON.stringify(entry)} is not a URL`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`OIDC_REDIRECT_URIS: ${JSON.stringify(entry)} must be http:// or https://`)
    if (url.hash) throw new ConfigError(`OIDC_REDIRECT_URIS: ${JSON.stringify(entry)} must have no fragment (the code is put there)`)
    return entry
  })
}

/** proxy-addr's names for address ranges, allowed in a TRUST_PROXY list. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/**
 * TRUST_PROXY (API.md §12): which X-Forwarded-For entries are written by our own proxies. A
 * number trusts that many hops in front of us; a list trusts the peers with those addresses. The
 * client address is then the first entry not added by a trusted proxy. `true` (trust every hop)
 * is refused: the client would choose its own address, and with it walk past every per-IP limit.
 */
export function parseTrustProxy (text: string): false | number | string[] {
  const value = text.trim().toLowerCase()
  if (value === 'false' || value === '' || value === '0') return false
  if (value === 'true') {
    throw new ConfigError('TRUST_PROXY: true would trust every hop, so a client could choose its own address; give the number of proxies in front of the API (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8)')
  }
  if (/^\d+$/.test(value)) return Number(value)
  const entries = value.split(',').map((entry) => entry.trim())
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/')
    const family = isIP(address ?? '')
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))
    if (!(PROXY_RANGE_NAMES.has(entry) || (family !== 0 && prefixOk && rest.length === 0))) {
      throw new ConfigError(`TRUST_PROXY: ${JSON.stringify(entry)} is not a hop count, an IP address, a CIDR or one of loopback, linklocal, uniquelocal`)
    }
  }
  return entries
}

/**
 * DATABASE_URL names one server, or several comma-separated hosts of one cluster (API.md §11):
 * `mysql://user:pass@10.0.0.1:3306,10.0.0.2:3306/boardkit`. One single-host URL per host, in the
 * order given, each with the same credentials, database and options.
 */
export function databaseUrls(databaseUrl: string): string[] {
  const match = /^(mysql:\/\/(?:[^@/]*@)?)([^/?#]*)(.*)$/s.exec(databaseUrl)
  if (!match) return [databaseUrl]
  const [, prefix, hosts, rest] = match
  return hosts!.split(',').map((host) => `${prefix}${host.trim()}${rest}`)
}

/** Host, port and database name of (the first host of) DATABASE_URL, for messages and for creating the database. */
export function describeDatabase(config: Pick<Config, 'DATABASE_URL'>) {
  const url = new URL(databaseUrls(config.DATABASE_URL)[0]!)
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    database: decodeURIComponent(url.pathname.slice(1)),
  }
}
