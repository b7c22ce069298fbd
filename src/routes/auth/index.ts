import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import type { Config } from '../../config.js'
import { AppError } from '../../errors.js'
import { ref, ErrorSchema, MeSchema, MfaChallengeSchema, SECOND_FACTOR_METHODS, TokenPairSchema, UserSchema, type User } from '../../schemas/shared.js'
import { clientAddress } from '../../plugins/client-address.js'
import { authOf, clearRefreshCookie, refreshTokenOf, setRefreshCookie } from '../../plugins/auth/index.js'
import { newSessionId, revocationReason, sessionStartedAt, type TokenPair } from '../../plugins/auth/tokens.js'
import { eventContext } from '../events/context.js'
import { matchTotpStep, openTotpSecret } from '../../mfa/totp.js'
import { hashRecoveryCode } from '../../mfa/recovery-codes.js'
import { MFA_CHALLENGE_TTL_MS, secondFactorAmr, type Challenge, type SecondFactorProof } from '../../repositories/mfa.js'
import { challengeHash, challengeOf } from '../../passkeys/webauthn.js'
import { LoginBody, LoginQuery, LogoutQuery, MfaLoginBody, RefreshBody, RegisterBody } from './schemas.js'

/** API.md §1: email and name are trimmed (and email lower-cased) before validation. */
export async function normaliseIdentity (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null | undefined
  if (!body || typeof body !== 'object') return
  if (typeof body.email === 'string') body.email = body.email.trim().toLowerCase()
  if (typeof body.name === 'string') body.name = body.name.trim()
}

const invalidCredentials = () => new AppError(401, 'invalid_credentials', 'Email or password is wrong')

/**
 * Every refusal of a passkey's answer looks the same as a wrong password (API.md §14): a wrong
 * origin or RP ID, a bad signature, an unknown credential, a spent or expired challenge, a counter
 * that went backwards. Which check failed is not said: it would help a forger, not a user.
 */
export const passkeyRefused = (hint = 'sign in again') => new AppError(401, 'invalid_credentials', `The passkey was not accepted: ${hint}`)

/**
 * The per-account lockout (API.md §6, §12): counts a password check of this email before it
 * runs, and refuses it with 429 once LOGIN_MAX_FAILURES checks have run in the window, before
 * any argon2 work. For logins and for every other check of a password someone types
 * (`current_password`).
 */
export async function countPasswordAttempt (app: FastifyInstance, request: FastifyRequest, email: string): Promise<void> {
  const { config, repos } = app
  if (config.LOGIN_MAX_FAILURES === 0) return
  const attempt = await repos.loginFailures.countAttempt(email, config.LOGIN_MAX_FAILURES, config.LOGIN_LOCKOUT_WINDOW)
  if (!attempt.allowed) {
    app.metrics.countRateLimited('account')
    await repos.events.loginLocked(email, eventContext(request))
    throw new AppError(429, 'rate_limited', 'Too many failed password attempts for this account; try again later', undefined,
      { headers: { 'retry-after': String(attempt.retryAfterSeconds) } })
  }
}

/** A password proved right: the attempts counted for this email start again from zero. */
export async function clearPasswordAttempts (app: FastifyInstance, email: string): Promise<void> {
  if (app.config.LOGIN_MAX_FAILURES > 0) await app.repos.loginFailures.clear(email)
}

export const setCookieHeader = {
  'set-cookie': {
    type: 'string',
    description: 'Browser mode: `__Host-refresh=<refresh token>; Max-Age=<refresh TTL>; Path=/; HttpOnly; Secure; SameSite=Strict`',
  },
}

/**
 * The answer of a login or refresh. In browser mode the refresh token goes into the cookie and
 * is left out of the body, so no script on the page ever holds it (API.md §8).
 */
export function sendPair (reply: FastifyReply, pair: TokenPair, user: User, inCookie: boolean) {
  if (!inCookie) return { ...pair, user }
  const { refresh_token: refreshToken, ...rest } = pair
  setRefreshCookie(reply, refreshToken, pair.refresh_expires_in)
  return { ...rest, user }
}

/**
 * What a login with a right password still needs before it gets tokens (API.md §13): the
 * second-factor methods of the account, none when it has none. The one place that decides it.
 */
export function secondFactorsOf (account: { totp_enabled: boolean, has_passkey: boolean }): Array<typeof SECOND_FACTOR_METHODS[number]> {
  // TOTP turns the second factor on; a passkey is then one more way to give it. A passkey alone
  // signs in by itself (POST /login/passkey) and leaves password logins as they were.
  if (!account.totp_enabled) return []
  return SECOND_FACTOR_METHODS.filter((method) => method !== 'passkey' || account.has_passkey)
}

export const invalidMfaToken = () => new AppError(401, 'invalid_mfa_token',
  'The mfa_token is unknown, expired or spent (used, 5 wrong codes, or the password changed since): log in again with POST /login')

/** The client as API.md §7 shows it on a session: user agent (≤ 255) and address (TRUST_PROXY rule). */
export function clientOf (request: FastifyRequest) {
  return { user_agent: request.headers['user-agent']?.slice(0, 255) || null, ip: clientAddress(request) || null }
}

/** When a session can no longer be refreshed: its new refresh token's expiry, capped by SESSION_MAX_AGE. */
export function sessionExpiryOf (config: Pick<Config, 'REFRESH_TOKEN_TTL' | 'SESSION_MAX_AGE'>, sid: string, now: number): Date {
  const refreshExpiry = now + config.REFRESH_TOKEN_TTL
  return new Date(config.SESSION_MAX_AGE > 0 ? Math.min(refreshExpiry, sessionStartedAt(sid) + config.SESSION_MAX_AGE) : refreshExpiry)
}

/**
 * A passkey's answer as a second factor: the challenge of `POST /login/mfa/options` for this very
 * login (spent here), a credential of this user, and the signature checked. Whatever fails, the
 * proof names no passkey, and repositories/mfa.ts counts it as a wrong code.
 */
async function passkeyProof (app: FastifyInstance, response: AuthenticationResponseJSON, challenge: Challenge): Promise<SecondFactorProof> {
  const refused = { method: 'passkey', passkeyId: null, newCounter: 0 } as const
  const signed = challengeOf(response)
  const ceremony = signed ? await app.repos.passkeys.takeChallenge(challengeHash(signed), 'mfa') : null
  if (!ceremony || ceremony.mfaTokenHash !== challenge.tokenHash || ceremony.userId !== challenge.user.id) return refused
  const owner = await app.repos.passkeys.findByCredentialId(response.id)
  if (!owner || owner.user.id !== challenge.user.id) return refused
  const checked = await app.webauthn.verifyAuthentication(response, signed!, owner)
  return checked ? { method: 'passkey', passkeyId: owner.id, newCounter: checked.newCounter } : refused
}

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, tokens, passwords, config, outbox, metrics } = app

  const sessionExpiry = (sid: string, now: number) => sessionExpiryOf(config, sid, now)

  app.post('/register', {
    config: { rateLimitGroup: 'auth' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create an account',
      description: 'The new user has the role `user`. Log in afterwards to get tokens. A mail with a link that verifies ' +
        'the email is sent (see `POST /email/verify`).',
      body: RegisterBody,
      response: { 201: ref(UserSchema, 'The new user; `Location` is its URL'), 409: ref(ErrorSchema) },
    },
  }, async (request, reply) => {
    const { email, name, password } = request.body
    const user = await repos.users.create({ email, name, password_hash: await passwords.hash(password) }, eventContext(request))
    outbox.kick()
    return reply.code(201).header('location', `/users/${user.id}`).send(user)
  })

  app.post('/login', {
    config: { rateLimitGroup: 'auth' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['auth'],
      operationId: 'login',
      summary: 'Log in: get an access and a refresh token, or a challenge for the second factor',
      description: 'Starts a new session. The access token is `fresh` (needed to change email, password, second factors or delete ' +
        'the account) and carries `amr: ["pwd"]` (RFC 8176). ' +
        '**Two steps with a second factor:** when the account has TOTP on, the right password gets no tokens but a ' +
        '`MfaChallenge` (`mfa_required: true`, a single-use `mfa_token` valid 5 minutes, the `methods` available): send it with a ' +
        'code to `POST /login/mfa`, which answers as this route does. ' +
        'Every password check of one email is counted before it runs: once `LOGIN_MAX_FAILURES` have run within ' +
        '`LOGIN_LOCKOUT_WINDOW` without a success, further attempts for that email get 429 `rate_limited` with `Retry-After`, ' +
        'unchecked, until the lock (one window long) is over, from any address and on every instance; so of any burst at most ' +
        '`LOGIN_MAX_FAILURES` are checked. A successful login resets the count (with a second factor: once the code is right). ' +
        'With `REQUIRE_EMAIL_VERIFICATION=true`, the right password for an email that is not verified yet is 403 `email_not_verified`. ' +
        'With `refresh=cookie` (browser mode) the refresh token is set as an `HttpOnly` `__Host-refresh` cookie instead of ' +
        'being in the body.',
      querystring: LoginQuery,
      body: LoginBody,
      response: {
        200: {
          description: 'A new session: fresh access token, refresh token (in the body, or with `refresh=cookie` in the cookie) and the ' +
            'user; or, for an account with a second factor, the challenge to finish with `POST /login/mfa`',
          anyOf: [ref(TokenPairSchema), ref(MfaChallengeSchema)],
          headers: setCookieHeader,
        },
        401: ref(ErrorSchema),
        403: ref(ErrorSchema, '`email_not_verified`: the password is right, but the email must be verified first (`REQUIRE_EMAIL_VERIFICATION`)'),
        429: ref(ErrorSchema),
      },
    },
  }, async (request, reply) => {
    const { email, password } = request.body
    // Counted before the check, so a burst cannot pass the lockout while argon2 is busy.
    await countPasswordAttempt(app, request, email).catch((error: unknown) => {
      if (error instanceof AppError && error.code === 'rate_limited') metrics.countLogin('locked')
      throw error
    })
    const account = await repos.users.findCredentials({ email })
    // An account made by a sign-in with a provider has no password (API.md §17): verify() still
    // runs on the dummy hash and fails, so the answer and its time are those of a wrong password.
    if (!await passwords.verify(account?.password_hash ?? null, password) || !account?.password_hash) {
      metrics.countLogin('failed')
      await repos.events.loginFailed(email, eventContext(request), !account ? 'unknown_email' : account.password_hash ? 'wrong_password' : 'no_password')
      throw invalidCredentials()
    }
    const { password_hash: passwordHash, session_generation: generation, totp_enabled: _, has_passkey: __, ...user } = account
    const secondFactors = secondFactorsOf(account)
    // With a second factor to come, the count stays until its code is right: the codes count
    // toward the same lockout (API.md §13), and a right password must not give a guesser of
    // codes a new allowance at every login.
    if (secondFactors.length === 0) await clearPasswordAttempts(app, email)
    // Hashes made with weaker parameters are upgraded while we have the password in hand.
    if (passwords.needsRehash(passwordHash)) await repos.users.rehashPassword(user.id, passwordHash, await passwords.hash(password))
    // Only after the password checked out: a 403 must not tell a guesser which emails exist.
    if (config.REQUIRE_EMAIL_VERIFICATION && !user.email_verified_at) {
      metrics.countLogin('email_not_verified')
      throw new AppError(403, 'email_not_verified', 'Verify your email first with the link in the verification mail (a password-reset link verifies it too)')
    }
    if (secondFactors.length > 0) {
      // Bound to the generation read with the hash, as a session would be: a password change or
      // reset before the code comes voids it.
      const mfaToken = await repos.mfa.startChallenge(user.id, generation)
      metrics.countLogin('mfa_required')
      return { mfa_required: true as const, mfa_token: mfaToken, methods: secondFactors, expires_in: MFA_CHALLENGE_TTL_MS / 1000 }
    }
    const now = Date.now()
    const sid = newSessionId(now)
    const amr = ['pwd']
    await repos.sessions.start({ id: sid, user_id: user.id, created_at: new Date(now), expires_at: sessionExpiry(sid, now), generation, amr, ...clientOf(request) }, eventContext(request))
    metrics.countLogin('succeeded')
    return sendPair(reply, tokens.issuePair(user, sid, true, amr), user, request.query.refresh === 'cookie')
  })

  app.post('/login/mfa', {
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['auth'],
      operationId: 'loginMfa',
      summary: 'Log in, step two: the second factor',
      description: 'Finishes a login that answered `mfa_required`: the `mfa_token` with a TOTP `code` from the authenticator app, ' +
        'one of the `recovery_code`s, or a `passkey_response` to the options of `POST /login/mfa/options` (exactly one of the three). ' +
        'Answers as `POST /login` does: a new session, its access token `fresh` with `amr: ["pwd", "otp"]` (`["pwd", "hwk"]` with a ' +
        'passkey), and with `refresh=cookie` the refresh token in the cookie. A refused passkey is 401 `invalid_credentials` and ' +
        'counts as a wrong code. A code of the current ' +
        '30-second step or either neighbour is accepted, each code once: a code already used (here or elsewhere) is wrong. ' +
        'A wrong code is 400 `invalid_mfa_code`; the 5th spends the `mfa_token`. An unknown, expired or spent `mfa_token` ' +
        '(used, out of attempts, or voided by a password change or reset since the password was checked) is 401 ' +
        '`invalid_mfa_token`: log in again. Every code checked counts toward the account\'s login lockout (see `POST /login`). ' +
        'A recovery code is spent, and every other session of the account ends.',
      querystring: LoginQuery,
      body: MfaLoginBody,
      response: {
        200: { ...ref(TokenPairSchema, 'A new session, as `POST /login` gives one, with `amr: ["pwd", "otp"]` or `["pwd", "hwk"]` (`["fed", …]` after a provider\'s sign-in)'), headers: setCookieHeader },
        400: ref(ErrorSchema, '`invalid_mfa_code`: the code is wrong or already used (the answer says how many attempts are left); ' +
          '`validation_error`: not exactly one of `code`, `recovery_code` and `passkey_response`, or a malformed field'),
        401: ref(ErrorSchema, '`invalid_mfa_token`: unknown, expired or spent; log in again. `invalid_credentials`: the passkey was refused'),
        429: ref(ErrorSchema),
      },
    },
  }, async (request, reply) => {
    const { mfa_token: mfaToken, code, recovery_code: recoveryCode, passkey_response: passkeyResponse } = request.body
    const sent = [code, recoveryCode, passkeyResponse].filter((proof) => proof !== undefined).length
    if (sent !== 1) {
      throw new AppError(400, 'validation_error', 'Send exactly one of code, recovery_code and passkey_response',
        [{ path: code === undefined ? '/code' : recoveryCode === undefined ? '/passkey_response' : '/recovery_code', message: 'exactly one of code, recovery_code and passkey_response is required' }])
    }
    const method = code !== undefined ? 'totp' : recoveryCode !== undefined ? 'recovery_code' : 'passkey'
    const challenge = await repos.mfa.findChallenge(mfaToken)
    if (!challenge) {
      metrics.countSecondFactor(method, 'invalid_token')
      throw invalidMfaToken()
    }
    const { user } = challenge
    // Counted before the check, as a password is: of any burst of codes for one account at most
    // LOGIN_MAX_FAILURES are checked (and the login's own password check counted too).
    await countPasswordAttempt(app, request, user.email)
    // The check has one shape whatever was sent: every candidate step computed and compared, and
    // the same statement that spends a right code run for a wrong one (repositories/mfa.ts).
    const proof: SecondFactorProof = code !== undefined
      ? { method: 'totp', step: matchTotpStep(openTotpSecret(challenge.sealedSecret, user.id, config.JWT_KEY_ENCRYPTION_SECRET), code) }
      : recoveryCode !== undefined
        ? { method: 'recovery_code', codeHash: hashRecoveryCode(recoveryCode) }
        : await passkeyProof(app, passkeyResponse!, challenge)
    const now = Date.now()
    const sid = newSessionId(now)
    const outcome = await repos.mfa.finishChallenge(challenge, proof,
      { id: sid, user_id: user.id, created_at: new Date(now), expires_at: sessionExpiry(sid, now), ...clientOf(request) }, eventContext(request))
    if (outcome.result !== 'signed_in') metrics.countSecondFactor(method, outcome.result)
    if (outcome.result === 'invalid_token') throw invalidMfaToken()
    if (outcome.result === 'wrong_code' && method === 'passkey') {
      // Refused as a passkey is everywhere (API.md §14), and counted as a wrong code is.
      throw passkeyRefused(outcome.attemptsLeft > 0 ? `${outcome.attemptsLeft} more ${outcome.attemptsLeft === 1 ? 'try' : 'tries'} with this mfa_token` : 'log in again with POST /login')
    }
    if (outcome.result === 'wrong_code') {
      throw new AppError(400, 'invalid_mfa_code', outcome.attemptsLeft > 0
        ? `The code is wrong or already used; ${outcome.attemptsLeft} more ${outcome.attemptsLeft === 1 ? 'try' : 'tries'} with this mfa_token`
        : 'The code is wrong or already used, and that was the last try: log in again with POST /login')
    }
    await clearPasswordAttempts(app, user.email)
    metrics.countSecondFactor(method, 'succeeded')
    metrics.countLogin('succeeded')
    return sendPair(reply, tokens.issuePair(user, sid, true, secondFactorAmr(challenge.firstFactor, method)), user, request.query.refresh === 'cookie')
  })

  app.post('/refresh', {
    config: { rateLimitGroup: 'refresh' },
    // The body is optional here (the token may come in the header): no body is an empty one.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      tags: ['auth'],
      operationId: 'refresh',
      summary: 'Exchange a refresh token for a new pair (rotation)',
      description: 'Send the refresh token as `Authorization: Bearer <refresh_token>` or as `{"refresh_token": ...}` ' +
        '(the body wins when both are present). The presented refresh token is spent. Presenting a spent refresh token ' +
        'more than the reuse grace period after it was spent is treated as theft: the whole session is revoked. ' +
        'A session older than `SESSION_MAX_AGE` cannot be refreshed.\n\n' +
        '**Browser mode**: with neither, the `__Host-refresh` cookie set by `POST /login?refresh=cookie` is read. Such a ' +
        'request must carry `X-Requested-With` (any value) and, if it has an `Origin`, come from this API\'s own origin or ' +
        'one in `CORS_ORIGINS`; otherwise 403 `forbidden`. The new refresh token is then only in a new cookie.',
      security: [{ bearerAuth: [] }, { refreshCookie: [] }, {}],
      body: RefreshBody,
      response: {
        200: { ...ref(TokenPairSchema, 'A new pair of the same session; the presented refresh token is spent'), headers: setCookieHeader },
        401: ref(ErrorSchema),
        403: ref(ErrorSchema),
      },
    },
  }, async (request, reply) => {
    const presented = refreshTokenOf(request, request.body?.refresh_token)
    const token = tokens.verify(presented.token, 'refresh')
    const state = await repos.tokens.findTokenState(token.userId, token.jti, token.sid)
    const reason = revocationReason(token, state)
    if (reason || !state) {
      const rotatedAt = state?.tokenRevokedAt
      if (rotatedAt && !state.sessionRevoked && Date.now() - rotatedAt.getTime() > config.REFRESH_REUSE_GRACE) {
        // A spent refresh token came back after the grace period: someone kept a copy. Revoke
        // the session, so the thief's tokens and the victim's newer ones of it all die.
        await repos.sessions.endById(token.sid, {
          type: 'token.refresh_reused',
          subject_user_id: token.userId,
          context: { ...eventContext(request), session_id: token.sid },
          details: { spent_at: rotatedAt.toISOString() },
        })
        metrics.countRefreshReuse()
        request.log.warn({ userId: token.userId, sid: token.sid }, 'refresh token reuse: session revoked')
      }
      throw new AppError(401, 'token_revoked', reason ?? 'The token has been revoked')
    }
    // SESSION_MAX_AGE counts from the login (the sid's own timestamp), however often the
    // session was refreshed since; so a cap lowered later applies to running sessions too.
    const now = Date.now()
    if (config.SESSION_MAX_AGE > 0 && now - sessionStartedAt(token.sid) >= config.SESSION_MAX_AGE) {
      throw new AppError(401, 'token_revoked', 'The session is older than SESSION_MAX_AGE; log in again')
    }
    // Of concurrent refreshes with one token, one wins; and a session ended since the check
    // above gives out no new pair.
    const rotation = await repos.sessions.rotate({ jti: token.jti, user_id: token.userId, expires_at: token.expiresAt }, token.sid,
      { at: new Date(now), expires_at: sessionExpiry(token.sid, now), ...clientOf(request) })
    if (rotation === 'spent') throw new AppError(401, 'token_revoked', 'The refresh token has already been used')
    if (rotation === 'ended') throw new AppError(401, 'token_revoked', 'The session has been logged out')
    // The session's amr, from its row: a refreshed token says how the login was proved, never more.
    return sendPair(reply, tokens.issuePair(state.user, token.sid, false, state.amr), state.user, presented.fromCookie)
  })

  app.post('/logout', {
    config: { auth: true },
    schema: {
      tags: ['auth'],
      operationId: 'logout',
      summary: 'Revoke this session, the others, or all',
      description: 'Takes effect on the very next request, on every instance. Logging in again afterwards works. Also ' +
        'clears the browser-mode `__Host-refresh` cookie.',
      querystring: LogoutQuery,
      response: {
        204: {
          type: 'null',
          description: 'Revoked: the tokens are dead on the next request',
          headers: { 'set-cookie': { type: 'string', description: 'Clears the browser-mode cookie: `__Host-refresh=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict`' } },
        },
      },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    const scope = request.query.scope ?? 'local'
    if (scope === 'local') {
      // Every token of the session, access and refresh, is checked against its row.
      await repos.sessions.endById(auth.sid, { type: 'logout', subject_user_id: auth.userId, context: eventContext(request), details: { scope } })
    } else {
      await repos.users.endSessions(auth.userId, scope === 'others' ? auth.sid : null, eventContext(request))
    }
    request.log.info({ userId: auth.userId, sid: auth.sid, scope }, 'logout')
    clearRefreshCookie(reply)
    return reply.code(204).send()
  })

  app.get('/me', {
    config: { auth: true, scope: 'profile' },
    schema: {
      tags: ['auth'],
      operationId: 'getMe',
      summary: 'The current user',
      description: 'Answered from the same query that checks the token (revocation, session, role, second factors), so it always ' +
        'shows the current role, email and `mfa`.',
      response: { 200: ref(MeSchema, 'The user the access token belongs to, with their second factors') },
    },
  }, async (request) => {
    const { user, mfa } = authOf(request)
    return { ...user, mfa }
  })
}

export default authRoutes
