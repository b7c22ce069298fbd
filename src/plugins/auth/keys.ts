import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, randomBytes, type JsonWebKey } from 'node:crypto'
import type { JWT } from '@fastify/jwt'
import { createSigner, createVerifier } from 'fast-jwt'
import { ConfigError, type Config } from '../../config.js'
import { isDatabaseUnavailable } from '../../db/errors.js'
import { AppError } from '../../errors.js'
import type { SigningKeyRow, SigningKeysRepository } from '../../repositories/signing-keys.js'

// The signing keys of API.md §9: which key signs, which keys verify, and the public JWKS. Token
// issuing (tokens.ts) sees only a TokenCodec; it neither knows nor cares which algorithm is in use.

export type SigningAlgorithm = Config['JWT_ALGORITHM']
export type AsymmetricAlgorithm = Exclude<SigningAlgorithm, 'HS256'>

/** API.md §9: `iat` or `nbf` may be this far in the future (clock skew between hosts). */
export const CLOCK_SKEW_SECONDS = 30
/**
 * Every instance re-reads the key table this often, so a rotation or a revocation reaches every
 * instance within KEY_REFRESH_INTERVAL_MS plus one query: docs/authentication.md promises ≤ 5 s.
 */
export const KEY_REFRESH_INTERVAL_MS = 2000
/**
 * How long the keys last read stay in use while the key table cannot be read. A short outage
 * must not log everyone out; but a revocation written meanwhile would go unseen for as long as
 * it lasts, so past this bound the ring fails closed: 503, until it reads the table again.
 */
export const KEY_STALE_AFTER_MS = 30_000

declare module 'fastify' {
  interface FastifyInstance {
    keyRing: KeyRing
  }
}

/** What tokens.ts needs: sign claims, and verify a token back into its claims. */
export interface TokenCodec {
  sign (claims: Record<string, unknown>): string
  verify (token: string): Record<string, unknown>
}

export interface PublicJwk {
  kty: string
  crv: string
  x: string
  y?: string
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

export interface KeyRing extends TokenCodec {
  /** The JWKS of API.md §9: the signing key and every key whose tokens may still be valid. */
  jwks (): { keys: PublicJwk[] }
  /** Re-reads the key table now (the timer does this every KEY_REFRESH_INTERVAL_MS). */
  refresh (): Promise<void>
  /** The kid that signs new tokens now; null under HS256. */
  signingKid (): string | null
  close (): void
}

/** Our kids are base64url; anything else (a path, a quote, SQL) was never issued by us. */
const KID = /^[A-Za-z0-9_-]{1,64}$/
/**
 * Headers that tell a verifier where to fetch a key, or hand it the key itself (RFC 7515 §4.1).
 * We never issue them, and honouring them lets the token's author choose the key.
 */
const FOREIGN_KEY_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit'] as const

/** An error tokens.ts maps to 401 token_invalid (any code but FAST_JWT_EXPIRED). */
class KeyRejectedError extends Error {
  code = 'BOARDKIT_KEY_REJECTED'
}
const reject = (message: string) => new KeyRejectedError(message)

/** The JOSE header, decoded without trusting it, so the checks below run before any key is used. */
function decodeHeader (token: string): Record<string, unknown> {
  const dot = token.indexOf('.')
  if (dot <= 0) throw reject('not a JWS')
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
  } catch {
    throw reject('the header is not JSON')
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw reject('the header is not an object')
  return header as Record<string, unknown>
}

/** Only the configured algorithm, no key-carrying headers, and a kid only where we issue one. */
function checkHeader (header: Record<string, unknown>, algorithm: SigningAlgorithm): string | null {
  if (header.alg !== algorithm) throw reject(`alg must be ${algorithm}`)
  for (const name of FOREIGN_KEY_HEADERS) if (name in header) throw reject(`the ${name} header is not accepted`)
  const { kid } = header
  if (algorithm === 'HS256') {
    // HS256 tokens carry no kid: there is one secret.
    if (kid !== undefined) throw reject('an HS256 token has no kid')
    return null
  }
  if (typeof kid !== 'string' || !KID.test(kid)) throw reject('the kid is missing or malformed')
  return kid
}

/**
 * fast-jwt checks exp and (unless told not to) nbf with no tolerance, and never iat. API.md §9:
 * both may be at most CLOCK_SKEW_SECONDS ahead; a token "issued in the future" was not issued by us.
 */
function checkTimes (claims: Record<string, unknown>): Record<string, unknown> {
  const latest = Math.floor(Date.now() / 1000) + CLOCK_SKEW_SECONDS
  for (const name of ['iat', 'nbf'] as const) {
    const value = claims[name]
    if (value === undefined && name === 'nbf') continue
    if (typeof value !== 'number' || !Number.isFinite(value)) throw reject(`${name} is not a number`)
    if (value > latest) throw reject(`${name} is in the future`)
  }
  return claims
}

/** Options shared by the HS256 verifier (src/plugins/auth/index.ts) and the per-kid ones here. */
export function verifyOptions (config: Config) {
  return {
    allowedIss: config.JWT_ISSUER,
    allowedAud: config.JWT_AUDIENCE,
    requiredClaims: ['sub', 'jti', 'sid', 'type', 'iat', 'exp', 'iss', 'aud'],
    // nbf is checked by checkTimes(), with the clock skew API.md §9 allows.
    ignoreNotBefore: true,
    // Remember verified tokens (signature and claims; an entry never outlives the token's exp):
    // a client sends the same access token many times. Revocation is not cached: it is checked
    // against the database on every request.
    cache: 10_000,
  }
}

/** HS256 with JWT_SECRET through @fastify/jwt, behind the same header and time checks. */
export function createSecretKeyRing (jwt: JWT): KeyRing {
  return {
    sign: (claims) => jwt.sign(claims),
    verify (token) {
      checkHeader(decodeHeader(token), 'HS256')
      return checkTimes(jwt.verify(token))
    },
    jwks: () => ({ keys: [] }),
    refresh: async () => {},
    signingKid: () => null,
    close () {},
  }
}

// ---- private keys at rest: AES-256-GCM under a key derived from JWT_KEY_ENCRYPTION_SECRET

const CIPHERTEXT_VERSION = 'v1'

function encryptionKey (secret: string): Buffer {
  // HKDF, not the secret itself: the secret may be any length, and a derived key used only here.
  return Buffer.from(hkdfSync('sha256', secret, 'boardkit', 'signing-keys aes-256-gcm', 32))
}

/** The kid is the additional data, so a ciphertext copied onto another row does not decrypt. */
export function encryptPrivateKey (pkcs8: Buffer, kid: string, secret: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secret), iv)
  cipher.setAAD(Buffer.from(kid))
  const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()])
  return [CIPHERTEXT_VERSION, iv, cipher.getAuthTag(), ciphertext].map((part) => typeof part === 'string' ? part : part.toString('base64url')).join('.')
}

export function decryptPrivateKey (stored: string, kid: string, secret: string): Buffer {
  const [version, iv, tag, ciphertext] = stored.split('.')
  if (version !== CIPHERTEXT_VERSION || !iv || !tag || !ciphertext) throw new Error(`signing key ${kid}: unknown ciphertext format`)
  const decipher = createDecipheriv('aes-256-gcm', encryptionKey(secret), Buffer.from(iv, 'base64url'))
  decipher.setAAD(Buffer.from(kid))
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  try {
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()])
  } catch {
    // A configuration mistake, not a crash: the server and the CLI print this one line and exit 1.
    throw new ConfigError(`JWT_KEY_ENCRYPTION_SECRET: cannot decrypt signing key ${kid}; is it the secret the key was stored with?`)
  }
}

/** A new key pair as a row: the public JWK in clear, the private half encrypted. */
export function generateSigningKey (algorithm: AsymmetricAlgorithm, secret: string) {
  const { publicKey, privateKey } = algorithm === 'EdDSA'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  // 128 random bits: unguessable, and safe in a header, a URL and a log line.
  const kid = randomBytes(16).toString('base64url')
  const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' })
  return { kid, algorithm, public_jwk: JSON.stringify(jwk), private_key: encryptPrivateKey(pkcs8, kid, secret) }
}

/** Whether a key's tokens may still be valid at `now`. */
function isLive (row: SigningKeyRow, now: number): boolean {
  return row.revoked_at === null && (row.retires_at === null || row.retires_at.getTime() > now)
}

/** The key that signs at `now`: the newest live key already active. */
export function currentSigningKey (rows: SigningKeyRow[], now = Date.now()): SigningKeyRow | null {
  let best: SigningKeyRow | null = null
  for (const row of rows) {
    if (!isLive(row, now) || row.activates_at.getTime() > now) continue
    if (!best || row.activates_at > best.activates_at || (row.activates_at.getTime() === best.activates_at.getTime() && row.generation > best.generation)) best = row
  }
  return best
}

/**
 * A key of `algorithm` that signs now, made if there is none (first start, or the signing key was
 * revoked). Several instances starting at once may all try: the unique (algorithm, generation)
 * key lets exactly one insert win, and the others read its row.
 */
export async function ensureSigningKey (repo: SigningKeysRepository, config: Config): Promise<void> {
  const algorithm = config.JWT_ALGORITHM
  if (algorithm === 'HS256') return
  const rows = await repo.list(algorithm)
  if (currentSigningKey(rows)) return
  const generation = Math.max(0, ...rows.map((row) => row.generation)) + 1
  await repo.insert({ ...generateSigningKey(algorithm, config.JWT_KEY_ENCRYPTION_SECRET), generation, activates_at: new Date() })
}

/**
 * `keys rotate`: a new key, published now, signing after JWT_KEY_ACTIVATION_DELAY so verifiers'
 * JWKS caches have it first. The keys it replaces verify until their last token could expire.
 */
export async function rotateSigningKey (repo: SigningKeysRepository, config: Config) {
  const algorithm = config.JWT_ALGORITHM
  if (algorithm === 'HS256') throw new Error('JWT_ALGORITHM is HS256: there are no key pairs to rotate')
  const rows = await repo.list(algorithm)
  const generation = Math.max(0, ...rows.map((row) => row.generation)) + 1
  const activatesAt = new Date(Date.now() + config.JWT_KEY_ACTIVATION_DELAY)
  const key = generateSigningKey(algorithm, config.JWT_KEY_ENCRYPTION_SECRET)
  // Both tokens are signed with the key, so it verifies for as long as a refresh token lives.
  const retiresAt = new Date(activatesAt.getTime() + Math.max(config.ACCESS_TOKEN_TTL, config.REFRESH_TOKEN_TTL))
  await repo.rotate({ ...key, generation, activates_at: activatesAt }, retiresAt)
  return { kid: key.kid, activatesAt }
}

/** `keys revoke <kid>`: its tokens die on every instance at the next refresh; a new key signs at once. */
export async function revokeSigningKey (repo: SigningKeysRepository, config: Config, kid: string): Promise<boolean> {
  if (!KID.test(kid) || !await repo.revoke(kid)) return false
  await ensureSigningKey(repo, config)
  return true
}

interface LoadedKey {
  row: SigningKeyRow
  jwk: PublicJwk
  verify: (token: string) => Record<string, unknown>
}

/**
 * EdDSA or ES256 keys from the database. Each instance keeps the live keys in memory and re-reads
 * the table on a timer (never on the request path), so verifying a token costs no query.
 */
export async function createAsymmetricKeyRing (
  repo: SigningKeysRepository,
  config: Config,
  onError: (error: unknown) => void,
  { staleAfterMs = KEY_STALE_AFTER_MS }: { staleAfterMs?: number } = {},
): Promise<KeyRing> {
  const algorithm = config.JWT_ALGORITHM as AsymmetricAlgorithm
  const secret = config.JWT_KEY_ENCRYPTION_SECRET
  let version: string | null = null
  let rows: SigningKeyRow[] = []
  let keys = new Map<string, LoadedKey>()
  let signer: { kid: string, sign: (claims: Record<string, unknown>) => string } | null = null

  function load (row: SigningKeyRow): LoadedKey {
    const known = keys.get(row.kid)
    if (known) return { ...known, row }
    const jwk = JSON.parse(row.public_jwk) as JsonWebKey
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
    const verify = createVerifier({ key: pem, algorithms: [algorithm], ...verifyOptions(config) }) as (token: string) => Record<string, unknown>
    return { row, jwk: { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, ...(jwk.y ? { y: jwk.y } : {}), kid: row.kid, alg: algorithm, use: 'sig' }, verify }
  }

  /** Applies the rows at `now`: which keys verify, and which one signs. No query. */
  function apply (now = Date.now()) {
    keys = new Map(rows.filter((row) => isLive(row, now)).map((row) => [row.kid, load(row)]))
    const current = currentSigningKey(rows, now)
    if (current && current.kid !== signer?.kid) {
      const pem = createPrivateKey({ key: decryptPrivateKey(current.private_key, current.kid, secret), format: 'der', type: 'pkcs8' })
        .export({ type: 'pkcs8', format: 'pem' }) as string
      signer = { kid: current.kid, sign: createSigner({ key: pem, algorithm, kid: current.kid }) as (claims: Record<string, unknown>) => string }
    } else if (!current) {
      signer = null
    }
  }

  let readAt = 0
  async function read () {
    // The cheap question first: has anything changed since the last read?
    const latest = await repo.version()
    if (latest !== version) {
      rows = await repo.list(algorithm)
      version = latest
    }
    readAt = Date.now()
    apply()
  }

  // Reads run one after another, never overlapping: under load a read can take longer than the
  // timer's interval, and an older read finishing after a newer one would put back keys the
  // newer one had seen revoked.
  let reading: Promise<void> = Promise.resolve()
  function refresh (): Promise<void> {
    const next = reading.then(read, read)
    reading = next.catch(() => {})
    return next
  }

  /** Fails closed once the keys in memory are older than the bound (KEY_STALE_AFTER_MS). */
  function requireFreshKeys () {
    if (Date.now() - readAt > staleAfterMs) {
      throw new AppError(503, 'service_unavailable', 'The signing keys could not be read for too long; try again shortly')
    }
  }

  // The app cannot sign without its keys, so the first read must succeed; a database that is
  // slow to answer at start (instances booting together) gets a few more tries.
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureSigningKey(repo, config)
      await refresh()
      break
    } catch (error) {
      if (attempt >= 5 || !isDatabaseUnavailable(error)) throw error
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  // One warning when the table cannot be read (the database is away), not one every 2 s; the
  // keys last read stay in use meanwhile, up to staleAfterMs.
  let failing = false
  let timerBusy = false
  const timer = setInterval(() => {
    // A read still under way (a slow database) is not queued behind again.
    if (timerBusy) return
    timerBusy = true
    refresh().then(() => { failing = false }, (error: unknown) => {
      if (!failing) onError(error)
      failing = true
    }).finally(() => { timerBusy = false })
  }, KEY_REFRESH_INTERVAL_MS)
  // The timer must not keep a process (a CLI, a test) alive on its own.
  timer.unref()

  return {
    sign (claims) {
      if (!signer) throw new Error('no signing key is active; run `npm run cli -- keys rotate`')
      return signer.sign(claims)
    },
    verify (token) {
      requireFreshKeys()
      const kid = checkHeader(decodeHeader(token), algorithm)!
      const key = keys.get(kid)
      if (!key) throw reject('unknown or revoked kid')
      return checkTimes(key.verify(token))
    },
    // Served from memory even when stale: outside verifiers never learn of revocations anyway
    // (API.md §9), and this API's own checks fail closed in verify().
    jwks: () => ({ keys: [...keys.values()].map((key) => key.jwk) }),
    refresh,
    signingKid: () => signer?.kid ?? null,
    close: () => clearInterval(timer),
  }
}
