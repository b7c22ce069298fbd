import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import fastifyCookie, { type CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../../errors.js'
import { ref, ErrorSchema, type MfaStatus, type User } from '../../schemas/shared.js'
import { createPasswordHasher, type PasswordHasher } from './passwords.js'
import { createTokenService, revocationReason, type Role, type TokenService } from './tokens.js'
import { createAsymmetricKeyRing, createSecretKeyRing, verifyOptions } from './keys.js'
import type { ApiKeyScope } from '../../repositories/api-keys.js'
import { createWebAuthn, type WebAuthn } from '../../passkeys/webauthn.js'

/** Who is calling, from a verified access token and the database row read with it. */
export interface AuthContext {
  userId: number
  /** The current role from the database, not the token's `role` claim. */
  role: Role
  /** The user's row, read in the same query as the revocation check. */
  user: User
  /** The user's second factors, read in that query too (GET /me). */
  mfa: MfaStatus
  sid: string
  jti: string
  fresh: boolean
  expiresAt: Date
  /** How the session's login was proved (RFC 8176), from the session's row; empty for an API key. */
  amr: readonly string[]
  /**
   * MFA_REQUIRED_FOR_ADMINS is on and no second factor stands behind this request: a login
   * without one, or an API key (a key proves no second factor). Admin rights wait for one.
   */
  lacksRequiredSecondFactor: boolean
  /** Set when the request came with a personal access token (API.md §16) rather than a JWT. */
  apiKey: { id: number, scopes: readonly ApiKeyScope[] } | null
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    passwords: PasswordHasher
    /** The passkey ceremonies (API.md §14) under this instance's RP ID and origins. */
    webauthn: WebAuthn
  }
  interface FastifyRequest {
    auth: AuthContext | null
  }
  interface FastifyContextConfig {
    /** The route needs a valid access token; the guard below checks it before the body is read. */
    auth?: boolean
    /**
     * The scope an API key needs for this route (API.md §16). A route without one refuses keys:
     * keys never manage keys, sessions, passwords, the account or its second factors.
     */
    scope?: ApiKeyScope
  }
}

/** The Bearer token of the request (RFC 6750 §2.1), or an error a client can act on. */
export function bearerToken (request: FastifyRequest): string {
  const header = request.headers.authorization
  if (!header) throw new AppError(401, 'authorization_required', 'This route needs an access token: Authorization: Bearer <token>')
  const match = /^Bearer +(\S*) *$/i.exec(header)
  if (!match) throw new AppError(401, 'authorization_required', 'The Authorization header must use the Bearer scheme')
  if (!match[1]) throw new AppError(401, 'token_invalid', 'The Bearer token is empty')
  return match[1]
}

/**
 * Browser mode (API.md §8): the refresh token lives in this cookie, out of reach of any script
 * on the page. `__Host-` makes the browser refuse it unless it is Secure, has Path=/ and no
 * Domain, so no sibling subdomain can set or shadow it; SameSite=Strict keeps other sites'
 * pages from sending it at all.
 */
export const REFRESH_COOKIE = '__Host-refresh'
const refreshCookieOptions: CookieSerializeOptions = { httpOnly: true, secure: true, sameSite: 'strict', path: '/' }

export function setRefreshCookie (reply: FastifyReply, token: string, maxAgeSeconds: number) {
  reply.setCookie(REFRESH_COOKIE, token, { ...refreshCookieOptions, maxAge: maxAgeSeconds })
}

export function clearRefreshCookie (reply: FastifyReply) {
  reply.setCookie(REFRESH_COOKIE, '', { ...refreshCookieOptions, maxAge: 0 })
}

/**
 * Where the refresh token of a POST /refresh comes from: the body, else the Authorization
 * header, else the browser-mode cookie. A cookie comes with every request the browser makes to
 * us, whoever's page asked, so a cookie refresh must also prove it was asked for by a page we
 * trust (OWASP CSRF cheat sheet): a custom header, which a cross-origin page can send only after
 * a CORS preflight we answer for listed origins alone, and an Origin that is ours or listed.
 */
export function refreshTokenOf (request: FastifyRequest, bodyToken: string | undefined): { token: string, fromCookie: boolean } {
  if (bodyToken !== undefined) return { token: bodyToken, fromCookie: false }
  const cookie = request.headers.authorization === undefined && request.headers.cookie !== undefined
    ? request.server.parseCookie(request.headers.cookie)[REFRESH_COOKIE]
    : undefined
  if (!cookie) return { token: bearerToken(request), fromCookie: false }
  if (request.headers['x-requested-with'] === undefined) {
    throw new AppError(403, 'forbidden', 'A cookie refresh must carry the X-Requested-With header')
  }
  const origin = request.headers.origin
  if (origin !== undefined && origin !== `${request.protocol}://${request.host}` && !request.server.config.CORS_ORIGINS.includes(origin)) {
    throw new AppError(403, 'forbidden', 'A cookie refresh is accepted only from this API\'s own origin or one listed in CORS_ORIGINS')
  }
  return { token: cookie, fromCookie: true }
}

/** The AuthContext of a route declared with `config: { auth: true }`. */
export function authOf (request: FastifyRequest): AuthContext {
  if (!request.auth) throw new Error('authOf() on a route without config.auth')
  return request.auth
}

export default fp(async (app) => {
  const { config } = app
  await app.register(fastifyJwt, {
    secret: config.JWT_SECRET,
    // The algorithm is pinned on both sides: a token with `alg: none`, or signed with another
    // algorithm (e.g. an RS256 public key used as an HMAC secret), never reaches the claims.
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'], ...verifyOptions(config) },
  })
  // Parsed on demand, by refreshTokenOf() alone (hook: false): no other route reads a cookie, and
  // the per-request path of every authenticated route stays as it was.
  await app.register(fastifyCookie, { hook: false })
  // HS256 signs with JWT_SECRET through @fastify/jwt; EdDSA and ES256 with the database's key
  // pairs (API.md §9). Either way the header checks of keys.ts run first.
  const keyRing = config.JWT_ALGORITHM === 'HS256'
    ? createSecretKeyRing(app.jwt)
    : await createAsymmetricKeyRing(app.repos.signingKeys, config, (error) => app.log.warn({ err: error }, 'signing keys: refresh failed; the last keys read stay in use'))
  app.addHook('onClose', async () => keyRing.close())
  app.decorate('keyRing', keyRing)
  app.decorate('tokens', createTokenService(keyRing, config))
  app.decorate('passwords', await createPasswordHasher())
  app.decorate('webauthn', createWebAuthn(config))
  // null, not an object: a decorator object would be shared by every request.
  app.decorateRequest('auth', null)

  async function authenticate (request: FastifyRequest) {
    const presented = bearerToken(request)
    if (presented.startsWith(API_KEY_TOKEN_START)) return authenticateKey(request, presented)
    const token = app.tokens.verify(presented, 'access')
    const state = await app.repos.tokens.findTokenState(token.userId, token.jti, token.sid)
    const reason = revocationReason(token, state)
    if (reason || !state) throw new AppError(401, 'token_revoked', reason ?? 'The token has been revoked')
    request.auth = {
      userId: token.userId,
      role: state.user.role,
      user: state.user,
      mfa: state.mfa,
      sid: token.sid,
      jti: token.jti,
      fresh: token.fresh,
      expiresAt: token.expiresAt,
      amr: state.amr,
      // A code after the password (otp), or a passkey (hwk), which proves both factors alone (API.md §14).
      lacksRequiredSecondFactor: config.MFA_REQUIRED_FOR_ADMINS && !state.amr.some((method) => method === 'otp' || method === 'hwk'),
      apiKey: null,
    }
  }

  /**
   * A personal access token: checked in one statement (key, user, cut-off), then held to the
   * route's scope before anything else runs. Never fresh: what needs a fresh token needs a login.
   */
  async function authenticateKey (request: FastifyRequest, presented: string) {
    const key = await app.repos.apiKeys.check(presented)
    if (key === null) throw new AppError(401, 'token_invalid', 'The API key is not valid')
    if (key === 'dead') throw new AppError(401, 'token_revoked', 'The API key has been revoked, has expired, or was ended with its user\'s sessions')
    const needed = request.routeOptions.config.scope
    if (!needed || !key.scopes.includes(needed)) throw insufficientScope(needed)
    request.auth = {
      userId: key.user.id,
      role: key.user.role,
      user: key.user,
      mfa: key.mfa,
      sid: '',
      jti: '',
      fresh: false,
      expiresAt: new Date(8.64e15),
      amr: [],
      lacksRequiredSecondFactor: config.MFA_REQUIRED_FOR_ADMINS,
      apiKey: { id: key.id, scopes: key.scopes },
    }
  }

  // A route says `config: { auth: true }`; the guard, the security requirement and the 401
  // response in the OpenAPI document all come from that one line.
  app.addHook('onRoute', (route) => {
    if (!route.config?.auth) return
    // onRequest: before the body is read, so refusing an anonymous request is cheap. Appended,
    // so the per-IP rate limit (registered earlier) still runs first.
    route.onRequest = [...[route.onRequest ?? []].flat(), authenticate]
    const scope = route.config.scope
    route.schema = {
      ...route.schema,
      // An operation that takes keys lists its scope, so Swagger UI and Postman show it.
      security: [{ bearerAuth: [] }, ...(scope ? [{ apiKey: [scope] }] : [])],
      response: {
        401: ref(ErrorSchema),
        403: ref(ErrorSchema, scope
          ? `\`insufficient_scope\`: an API key without the scope \`${scope}\`; or \`forbidden\`, as described above`
          : '`insufficient_scope`: API keys cannot use this route; or `forbidden`, as described above'),
        ...(route.schema?.response as object),
      },
    }
  })
}, { name: 'auth', dependencies: ['config', 'db'] })

// Authorization rules shared by the resource routes. The role is the one read from the
// database with the token check, so a demotion takes effect on the next request.

/** `bk_`: a personal access token, not a JWT (a JWT starts with its header, `eyJ`). */
export const API_KEY_TOKEN_START = 'bk_'

/** 403 with RFC 6750's challenge naming the scope the route needs (API.md §16). */
function insufficientScope (scope: ApiKeyScope | undefined): AppError {
  const challenge = scope ? `Bearer realm="boardkit", error="insufficient_scope", scope="${scope}"` : 'Bearer realm="boardkit", error="insufficient_scope"'
  return new AppError(403, 'insufficient_scope', scope ? `This API key lacks the scope ${scope}` : 'API keys cannot be used here: log in instead', undefined,
    { headers: { 'www-authenticate': challenge } })
}

/** An admin's key has an admin's rights only with the scope `admin`. */
export function isAdmin (auth: AuthContext): boolean {
  return auth.role === 'admin' && (auth.apiKey === null || auth.apiKey.scopes.includes('admin'))
}

/**
 * API.md §13: with MFA_REQUIRED_FOR_ADMINS, admin rights are used only from a session whose login
 * had a second factor. An admin without one enrols like anyone (the /mfa routes need no admin
 * rights) and logs in again with a code.
 */
function requireAdminSecondFactor (auth: AuthContext): void {
  if (!auth.lacksRequiredSecondFactor) return
  if (auth.apiKey) {
    throw new AppError(403, 'mfa_required', 'Admin rights need a login with a second factor, which an API key cannot prove: use an access token from a login with a code or a passkey')
  }
  throw new AppError(403, 'mfa_required', 'Admin rights need a login with a second factor: sign in with a passkey, or turn on TOTP (POST /mfa/totp/setup, then /mfa/totp/enable) and log in again with a code')
}

export function requireAdmin (auth: AuthContext): void {
  if (!isAdmin(auth)) {
    if (auth.role === 'admin') throw insufficientScope('admin')
    throw new AppError(403, 'forbidden', 'Only an admin may do this')
  }
  requireAdminSecondFactor(auth)
}

/** Your own account, or an admin's rights over another's (which need a second factor as admin routes do). */
export function requireSelfOrAdmin (auth: AuthContext, userId: number, message = 'You may only do this to your own account'): void {
  if (auth.userId === userId) return
  if (!isAdmin(auth)) throw new AppError(403, 'forbidden', message)
  requireAdminSecondFactor(auth)
}

/** Account-takeover steps (email, password, deletion, second factors) need a token from a login. */
export function requireFreshToken (auth: AuthContext): void {
  if (!auth.fresh) throw new AppError(401, 'fresh_token_required', 'Log in again: this needs a token from a login, not from /refresh')
}
