import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { AppError, notFound } from '../../errors.js'
import { authOf, requireFreshToken } from '../../plugins/auth/index.js'
import { newSessionId } from '../../plugins/auth/tokens.js'
import { challengeHash, challengeOf } from '../../passkeys/webauthn.js'
import { MAX_PASSKEYS_PER_USER } from '../../repositories/passkeys.js'
import { describeDevice } from '../../schemas/device.js'
import { ErrorSchema, IdParams, PasskeySchema, ref, TokenPairSchema } from '../../schemas/shared.js'
import { clearPasswordAttempts, clientOf, countPasswordAttempt, invalidMfaToken, normaliseIdentity, passkeyRefused, sendPair, sessionExpiryOf, setCookieHeader } from '../auth/index.js'
import { LoginQuery } from '../auth/schemas.js'
import { eventContext } from '../events/context.js'
import {
  CreationOptionsSchema,
  MfaOptionsBody,
  PasskeyLoginBody,
  PasskeyLoginOptionsBody,
  RegisterPasskeyBody,
  RenamePasskeyBody,
  RequestOptionsSchema,
} from './schemas.js'

/** The RFC 8176 amr of a sign-in with a passkey: `hwk`, and `user` when the authenticator verified the user (PIN, biometrics). */
const passkeyAmr = (userVerified: boolean) => userVerified ? ['hwk', 'user'] : ['hwk']

/** A name for a new passkey when none is given: the browser and system it was made on. */
const defaultName = (request: FastifyRequest) => describeDevice(request.headers['user-agent'] ?? null)?.slice(0, 80) ?? 'Passkey'

/** Passkeys (API.md §14): making them, signing in with them, and managing one's own. */
const passkeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, webauthn, config, tokens, metrics } = app
  app.addSchema(CreationOptionsSchema)
  app.addSchema(RequestOptionsSchema)
  const sessionsEnded = 'Every other session of the account ends (the caller\'s stays), in the same transaction as the change and its ' +
    '`passkey.*` event.'

  app.post('/passkeys/register/options', {
    config: { auth: true },
    schema: {
      tags: ['passkeys'],
      operationId: 'passkeyRegistrationOptions',
      summary: 'Start adding a passkey: creation options (fresh token)',
      description: 'Options for `navigator.credentials.create()`: a resident (discoverable) key and user verification preferred, ' +
        'attestation `none`, and your passkeys already registered listed in `excludeCredentials`. The challenge is single-use and ' +
        `lives 5 minutes; send the browser's answer to \`POST /passkeys/register\`. Needs a fresh access token (a login, not a refresh). ` +
        `409 \`passkey_limit\` at ${MAX_PASSKEYS_PER_USER} passkeys.`,
      response: {
        200: ref(CreationOptionsSchema, 'The creation options'),
        409: ref(ErrorSchema, `\`passkey_limit\`: you have ${MAX_PASSKEYS_PER_USER} passkeys; remove one first`),
      },
    },
  }, async (request) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    const existing = await repos.passkeys.credentialsOf(auth.userId)
    if (existing.length >= MAX_PASSKEYS_PER_USER) throw passkeyLimit()
    const options = await webauthn.registrationOptions(auth.user, existing)
    await repos.passkeys.saveChallenge(challengeHash(options.challenge), 'register', auth.userId)
    return options
  })

  app.post('/passkeys/register', {
    config: { auth: true },
    schema: {
      tags: ['passkeys'],
      operationId: 'registerPasskey',
      summary: 'Finish adding a passkey',
      description: 'The answer of `navigator.credentials.create()` to the options of `POST /passkeys/register/options` (as JSON: ' +
        '`PublicKeyCredential.toJSON()` or `startRegistration()` of @simplewebauthn/browser), checked for the challenge, the origin ' +
        '(`WEBAUTHN_ORIGINS`), the RP ID (`WEBAUTHN_RP_ID`) and user presence. `name` defaults to the browser and system. ' +
        `From then on the passkey signs in alone (\`POST /login/passkey\`) and, with TOTP on, is a second factor. ${sessionsEnded} ` +
        'A challenge works once: any failure means starting again with new options.',
      body: RegisterPasskeyBody,
      response: {
        201: ref(PasskeySchema, 'The new passkey'),
        400: ref(ErrorSchema, '`invalid_passkey`: the answer does not check out (another challenge, origin or RP ID, a malformed or ' +
          'unsupported credential); `validation_error`'),
        409: ref(ErrorSchema, '`passkey_exists`: this credential is registered already; `passkey_limit`'),
      },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    const { response, name } = request.body
    const challenge = challengeOf(response)
    const ceremony = challenge ? await repos.passkeys.takeChallenge(challengeHash(challenge), 'register') : null
    // Options made for someone else (or no options at all) never register a passkey for this user.
    const credential = ceremony?.userId === auth.userId ? await webauthn.verifyRegistration(response, challenge!) : null
    if (!credential) throw new AppError(400, 'invalid_passkey', 'The passkey could not be added: start again with POST /passkeys/register/options')
    if (credential.credentialId.length > 255) throw new AppError(400, 'invalid_passkey', 'This authenticator\'s credential id is longer than we store (191 bytes)')
    const added = await repos.passkeys.add(auth.userId, { ...credential, userHandle: webauthn.userHandleOf(auth.userId), name: name ?? defaultName(request) },
      auth.sid, eventContext(request))
    if (added === 'exists') throw new AppError(409, 'passkey_exists', 'This passkey is registered already')
    if (added === 'limit') throw passkeyLimit()
    return reply.code(201).header('location', `/passkeys/${added.id}`).send(added)
  })

  app.get('/passkeys', {
    config: { auth: true },
    schema: {
      tags: ['passkeys'],
      operationId: 'listPasskeys',
      summary: 'Your passkeys',
      description: `Newest first; at most ${MAX_PASSKEYS_PER_USER}. Never a key or a credential id. Not for API keys.`,
      response: { 200: Type.Object({ items: Type.Array(ref(PasskeySchema)) }, { additionalProperties: false }) },
    },
  }, async (request) => ({ items: await repos.passkeys.list(authOf(request).userId) }))

  app.patch('/passkeys/:id', {
    config: { auth: true },
    schema: {
      tags: ['passkeys'],
      operationId: 'renamePasskey',
      summary: 'Rename one of your passkeys',
      description: 'Only the name changes; anything else about a passkey is the authenticator\'s. Not for API keys.',
      params: IdParams,
      body: RenamePasskeyBody,
      response: { 200: ref(PasskeySchema, 'The passkey, renamed'), 404: ref(ErrorSchema, '`not_found`: none of yours has this id') },
    },
  }, async (request) => {
    const passkey = await repos.passkeys.rename(authOf(request).userId, request.params.id, request.body.name)
    return passkey ?? notFound('Passkey')
  })

  app.delete('/passkeys/:id', {
    config: { auth: true },
    schema: {
      tags: ['passkeys'],
      operationId: 'deletePasskey',
      summary: 'Remove one of your passkeys (fresh token)',
      description: 'It no longer signs in. Never your last way to sign in: an account without a password keeps its last passkey ' +
        'unless a provider identity signs in to it (409 `last_sign_in_method`). Needs a fresh access token. ' +
        `${sessionsEnded} The passkey itself stays on the authenticator: remove it there too (the browser's or system's passkey settings).`,
      params: IdParams,
      response: {
        204: { type: 'null', description: 'Removed' },
        404: ref(ErrorSchema, '`not_found`: none of yours has this id'),
        409: ref(ErrorSchema, '`last_sign_in_method`: the account has no password, no provider identity and no other passkey'),
      },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    const outcome = await repos.passkeys.remove(auth.userId, request.params.id, auth.sid, eventContext(request))
    if (outcome === 'not_found') notFound('Passkey')
    if (outcome === 'last') throw new AppError(409, 'last_sign_in_method', 'This is your last way to sign in: set a password first (POST /password/forgot) or add another passkey')
    return reply.code(204).send()
  })

  app.post('/login/passkey/options', {
    config: { rateLimitGroup: 'auth' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['auth', 'passkeys'],
      operationId: 'passkeyLoginOptions',
      summary: 'Sign in with a passkey, step one: request options',
      description: 'Options for `navigator.credentials.get()`. Without `email`, a discoverable sign-in: the browser offers every passkey ' +
        'it holds for this site and the user picks one (no typing). With `email`, that account\'s passkeys (an unknown email gets ' +
        'options of the same shape, which no passkey answers). The challenge is single-use and lives 5 minutes; send the answer to ' +
        '`POST /login/passkey`.',
      body: PasskeyLoginOptionsBody,
      response: { 200: ref(RequestOptionsSchema, 'The request options') },
    },
  }, async (request) => {
    const email = request.body.email
    if (email === undefined || email === '') {
      const options = await webauthn.authenticationOptions(null)
      await repos.passkeys.saveChallenge(challengeHash(options.challenge), 'login', null)
      return options
    }
    const account = await repos.users.findCredentials({ email })
    const held = account ? await repos.passkeys.credentialsOf(account.id) : []
    const options = await webauthn.authenticationOptions(held.length > 0 ? held : webauthn.decoyCredentials(email))
    // An email without passkeys still stores a challenge (one no answer can use), so both cost the same.
    await repos.passkeys.saveChallenge(challengeHash(options.challenge), held.length > 0 ? 'login' : 'decoy', held.length > 0 ? account!.id : null)
    return options
  })

  app.post('/login/passkey', {
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['auth', 'passkeys'],
      operationId: 'loginPasskey',
      summary: 'Sign in with a passkey, step two',
      description: 'The answer of `navigator.credentials.get()` to the options of `POST /login/passkey/options` (as JSON). Answers as ' +
        '`POST /login` does: a new session with a `fresh` access token, and with `refresh=cookie` the refresh token in the cookie. ' +
        'A passkey proves both factors: `amr` is `["hwk", "user"]` when the authenticator verified the user (PIN or biometrics), ' +
        '`["hwk"]` otherwise, and no TOTP code is asked. Any refusal is 401 `invalid_credentials`, as a wrong password is: an ' +
        'unknown or removed passkey, another site\'s (origin or RP ID), a bad signature, a challenge spent, expired or made for ' +
        'another account, a signature counter that did not move forward (a cloned authenticator). Each answer for an account counts ' +
        'toward its login lockout (see `POST /login`). With `REQUIRE_EMAIL_VERIFICATION=true` an unverified email is 403 `email_not_verified`.',
      querystring: LoginQuery,
      body: PasskeyLoginBody,
      response: {
        200: { ...ref(TokenPairSchema, 'A new session, `amr: ["hwk", "user"]` or `["hwk"]`'), headers: setCookieHeader },
        401: ref(ErrorSchema, '`invalid_credentials`: the passkey was not accepted'),
        403: ref(ErrorSchema, '`email_not_verified`'),
        429: ref(ErrorSchema),
      },
    },
  }, async (request, reply) => {
    const { response } = request.body
    const owner = await repos.passkeys.findByCredentialId(response.id)
    if (!owner) {
      // No account to count it for: the per-IP limit is what holds back a flood of these.
      metrics.countLogin('failed')
      throw passkeyRefused()
    }
    const { user } = owner
    // Counted before anything is checked or spent, as a password is: a locked account's answers get 429, unchecked.
    await countPasswordAttempt(app, request, user.email).catch((error: unknown) => {
      if (error instanceof AppError && error.code === 'rate_limited') metrics.countLogin('locked')
      throw error
    })
    const challenge = challengeOf(response)
    const ceremony = challenge ? await repos.passkeys.takeChallenge(challengeHash(challenge), 'login') : null
    const checked = ceremony && (ceremony.userId === null || ceremony.userId === user.id) &&
      // A discoverable sign-in hands back the user handle the passkey was made for: it must be this account's.
      (response.response.userHandle === undefined || response.response.userHandle === owner.userHandle)
      ? await webauthn.verifyAuthentication(response, challenge!, owner)
      : null
    if (checked && config.REQUIRE_EMAIL_VERIFICATION && !user.email_verified_at) {
      // Only after the passkey checked out, as after a right password: a 403 must not tell a prober which accounts exist.
      metrics.countLogin('email_not_verified')
      throw new AppError(403, 'email_not_verified', 'Verify your email first with the link in the verification mail (a password-reset link verifies it too)')
    }
    const now = Date.now()
    const sid = newSessionId(now)
    const amr = passkeyAmr(checked?.userVerified ?? false)
    if (!checked || !await repos.passkeys.signIn(owner, checked.newCounter,
      { id: sid, user_id: user.id, created_at: new Date(now), expires_at: sessionExpiryOf(config, sid, now), amr, ...clientOf(request) }, eventContext(request))) {
      metrics.countLogin('failed')
      await repos.events.loginFailed(user.email, eventContext(request), 'passkey_refused')
      throw passkeyRefused()
    }
    await clearPasswordAttempts(app, user.email)
    metrics.countLogin('succeeded')
    return sendPair(reply, tokens.issuePair(user, sid, true, amr), user, request.query.refresh === 'cookie')
  })

  app.post('/login/mfa/options', {
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['auth', 'passkeys'],
      operationId: 'mfaPasskeyOptions',
      summary: 'Log in, step two with a passkey: request options',
      description: 'For a login that answered `mfa_required` with `passkey` among its `methods`: options for ' +
        '`navigator.credentials.get()` listing the account\'s passkeys. Send the answer as `passkey_response` to `POST /login/mfa` ' +
        'with the same `mfa_token`. 404 `not_found` when the account has no passkey (use a code).',
      body: MfaOptionsBody,
      response: {
        200: ref(RequestOptionsSchema, 'The request options'),
        401: ref(ErrorSchema, '`invalid_mfa_token`: unknown, expired or spent; log in again'),
        404: ref(ErrorSchema, '`not_found`: the account has no passkey'),
      },
    },
  }, async (request) => {
    const challenge = await repos.mfa.findChallenge(request.body.mfa_token)
    if (!challenge) throw invalidMfaToken()
    const held = await repos.passkeys.credentialsOf(challenge.user.id)
    if (held.length === 0) notFound('Passkey')
    const options = await webauthn.authenticationOptions(held)
    await repos.passkeys.saveChallenge(challengeHash(options.challenge), 'mfa', challenge.user.id, challenge.tokenHash)
    return options
  })
}

const passkeyLimit = () => new AppError(409, 'passkey_limit', `You have ${MAX_PASSKEYS_PER_USER} passkeys, the most an account may hold: remove one first`)

export default passkeyRoutes
