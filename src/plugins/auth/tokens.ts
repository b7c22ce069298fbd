import { randomBytes, randomUUID } from 'node:crypto'
import type { TokenCodec } from './keys.js'
import type { Config } from '../../config.js'
import { AppError } from '../../errors.js'
import type { TokenState } from '../../repositories/tokens.js'

export type TokenType = 'access' | 'refresh'
export type Role = 'user' | 'admin'

/** The claims we issue (API.md §2). `sub` is the user id as a string, per RFC 7519. */
export interface TokenClaims {
  sub: string
  jti: string
  sid: string
  type: TokenType
  iat: number
  exp: number
  iss: string
  aud: string
  fresh?: boolean
  role?: Role
  /** RFC 8176: how the session's login was proved, e.g. `["pwd"]` or `["pwd", "otp"]`. */
  amr?: readonly string[]
  /** OpenID Connect Core §2: when that login happened (Unix seconds); the same through refreshes. */
  auth_time?: number
}

/** What a verified token tells the application, in its own types. */
export interface VerifiedToken {
  userId: number
  jti: string
  sid: string
  type: TokenType
  fresh: boolean
  expiresAt: Date
}

export interface TokenPair {
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_expires_in: number
}

/**
 * A session id is a UUIDv7: its first 48 bits are the session's start in Unix milliseconds,
 * from which SESSION_MAX_AGE counts however often the session is refreshed. (Cut-offs do not
 * use it: they compare the session's generation with the user's, see drizzle/users.ts.)
 */
export function newSessionId (now = Date.now()): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(now, 0, 6)
  bytes[6] = (bytes[6]! & 0x0f) | 0x70 // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80 // RFC 9562 variant
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export function sessionStartedAt (sid: string): number {
  return parseInt(sid.slice(0, 8) + sid.slice(9, 13), 16)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const USER_ID = /^[1-9]\d{0,15}$/

const FAST_JWT_EXPIRED = 'FAST_JWT_EXPIRED'

export function createTokenService (jwt: TokenCodec, config: Config) {
  const invalid = (message: string) => new AppError(401, 'token_invalid', message)

  function sign (claims: Omit<TokenClaims, 'iss' | 'aud'>) {
    return jwt.sign({ ...claims, iss: config.JWT_ISSUER, aud: config.JWT_AUDIENCE })
  }

  return {
    /**
     * Issues an access + refresh pair for one session. `fresh` marks a token from a login, not a
     * refresh. `amr` is the session's (its row keeps it, so a refresh carries the login's), and
     * `auth_time` the login's time, which the session id holds.
     */
    issuePair (user: { id: number, role: Role }, sid: string, fresh: boolean, amr: readonly string[]): TokenPair {
      const now = Date.now()
      const iat = Math.floor(now / 1000)
      const accessTtl = Math.floor(config.ACCESS_TOKEN_TTL / 1000)
      const refreshTtl = Math.floor(config.REFRESH_TOKEN_TTL / 1000)
      const sub = String(user.id)
      return {
        access_token: sign({ sub, jti: randomUUID(), sid, type: 'access', fresh, role: user.role, amr, auth_time: Math.floor(sessionStartedAt(sid) / 1000), iat, exp: iat + accessTtl }),
        refresh_token: sign({ sub, jti: randomUUID(), sid, type: 'refresh', iat, exp: iat + refreshTtl }),
        token_type: 'Bearer',
        expires_in: accessTtl,
        refresh_expires_in: refreshTtl,
      }
    },

    /**
     * Checks signature and claims, then the token type. The verifier (src/plugins/auth/index.ts)
     * accepts only the configured algorithm, issuer and audience; a token that passes it but
     * lacks one of our claims is as invalid as a forged one.
     */
    verify (token: string, expectedType: TokenType): VerifiedToken {
      let claims: Partial<Record<keyof TokenClaims, unknown>>
      try {
        claims = jwt.verify(token)
      } catch (error) {
        if ((error as { code?: string }).code === FAST_JWT_EXPIRED) throw new AppError(401, 'token_expired', 'The token has expired')
        // The key ring's own answer (503: its keys are too old to trust, keys.ts) is not the
        // token's fault: a client must retry it, not sign the user out as after a 401.
        if (error instanceof AppError) throw error
        throw invalid('The token is malformed or its signature does not verify')
      }
      const { sub, jti, sid, type, fresh, exp } = claims
      if (typeof sub !== 'string' || !USER_ID.test(sub)) throw invalid('The token has no valid subject')
      if (typeof jti !== 'string' || !UUID.test(jti)) throw invalid('The token has no valid id')
      if (typeof sid !== 'string' || !UUID.test(sid)) throw invalid('The token has no valid session id')
      if (typeof exp !== 'number') throw invalid('The token has no expiry')
      if (type !== 'access' && type !== 'refresh') throw invalid('The token has no valid type')
      if (type !== expectedType) {
        throw new AppError(401, 'wrong_token_type', `This route needs an ${expectedType} token, not a ${type} token`)
      }
      return { userId: Number(sub), jti, sid, type, fresh: fresh === true, expiresAt: new Date(exp * 1000) }
    },
  }
}

export type TokenService = ReturnType<typeof createTokenService>

/**
 * The revocation rules of API.md §2, applied to what findTokenState() read. For a refresh token
 * a blocklisted jti means "already rotated"; the refresh route looks at when that happened.
 */
export function revocationReason (token: VerifiedToken, state: TokenState | null): string | null {
  if (!state) return 'The user no longer exists'
  if (state.sessionRevoked) return 'The session has ended: a logout, a password change or reset, a role change, or a second factor turned on or off'
  if (state.tokenRevokedAt) return token.type === 'refresh' ? 'The refresh token has already been used' : 'The token has been revoked'
  return null
}
