import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import { AppError, notFound } from '../../errors.js'
import type { OidcProvider } from '../../config.js'
import { authOf, requireFreshToken } from '../../plugins/auth/index.js'
import { newSessionId } from '../../plugins/auth/tokens.js'
import { createOidcClients, ProviderError } from '../../oidc/client.js'
import { accountExists, type OidcLogin } from '../../repositories/identities.js'
import { ErrorSchema, IdParams, MfaChallengeSchema, ref, TokenPairSchema } from '../../schemas/shared.js'
import { clientOf, secondFactorsOf, sendPair, sessionExpiryOf } from '../auth/index.js'
import { MFA_CHALLENGE_TTL_MS } from '../../repositories/mfa.js'
import { eventContext } from '../events/context.js'
import {
  AuthorizationUrlSchema, CallbackQuery, ExchangeBody, ExchangeQuery, IdentityListSchema, LinkBody, OidcProviderListSchema,
  ProviderParams, StartQuery, redirectHeaders,
} from './schemas.js'

/**
 * The browser's side of a sign-in under way: its state, in a cookie only this browser has. A
 * callback whose `state` is not this cookie's was not started here (login CSRF, RFC 6749 §10.12)
 * and is refused. `__Host-`: Secure, Path=/, no Domain, so no sibling site sets or shadows it.
 * SameSite=Lax, not Strict: the callback is a top-level navigation from the provider's site, on
 * which a Strict cookie would not be sent. HttpOnly: no script needs it.
 */
export const OIDC_COOKIE = '__Host-oidc'
const oidcCookieOptions: CookieSerializeOptions = { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }
const setCookieHeader = {
  'set-cookie': { type: 'string', description: '`__Host-oidc=<state>; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax`: binds the sign-in to this browser' },
}

/** What a provider may answer in `error` (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6); anything else is `provider_error`. */
const PROVIDER_ERRORS = new Set(['access_denied', 'login_required', 'consent_required', 'interaction_required', 'account_selection_required',
  'invalid_request', 'unauthorized_client', 'unsupported_response_type', 'invalid_scope', 'server_error', 'temporarily_unavailable'])

/** redirect_uri with a fragment: never in a query, so the code stays out of the page's server logs and Referer headers. */
const withFragment = (uri: string, fields: Record<string, string>) => `${uri}#${new URLSearchParams(fields).toString()}`

const oidcRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, config, tokens } = app
  // One per app: its discovery cache lives as long as the app (src/oidc/client.ts).
  const oidcClients = createOidcClients(config.OIDC_PROVIDERS, config.OIDC_TIMEOUT)

  function providerOf (id: string): OidcProvider {
    return oidcClients.find(id) ?? notFound('Provider')
  }

  function allowedRedirect (uri: string): string {
    if (!config.OIDC_REDIRECT_URIS.includes(uri)) {
      throw new AppError(400, 'validation_error', 'redirect_uri is not one of OIDC_REDIRECT_URIS', [{ path: '/redirect_uri', message: 'is not an allowed redirect URI' }])
    }
    return uri
  }

  /** Our callback URL, as the provider must have it registered: this API's origin as the request saw it (TRUST_PROXY rule). */
  const callbackUriOf = (request: FastifyRequest, provider: OidcProvider) => `${request.protocol}://${request.host}/auth/oidc/${provider.id}/callback`

  /** Failures the browser is told about, recorded (API.md §15): never the token, code or state. */
  async function recordFailure (request: FastifyRequest, provider: string, reason: string, detail?: string, userId: number | null = null) {
    request.log.info({ provider, reason, detail }, 'oidc sign-in failed')
    await repos.events.recordAlone({ type: 'oidc.failed', subject_user_id: userId, context: eventContext(request), details: { provider, reason, ...(detail && { detail: detail.slice(0, 200) }) } })
  }

  /** A new sign-in under way: the row every instance can find, the cookie only this browser has, the provider's URL. */
  async function begin (request: FastifyRequest, reply: FastifyReply, provider: OidcProvider, redirectUri: string, linkUserId: number | null): Promise<string> {
    const callbackUri = callbackUriOf(request, provider)
    let authorization
    try {
      authorization = await oidcClients.authorizationRequest(provider, callbackUri)
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error
      await recordFailure(request, provider.id, error.failure, error.detail, linkUserId)
      throw new AppError(503, 'service_unavailable', `The provider ${provider.name} cannot be reached right now; try again shortly`, undefined, { cause: error })
    }
    const { url, state, nonce, codeVerifier } = authorization
    await repos.identities.startLogin({ state, provider: provider.id, redirectUri, callbackUri, nonce, codeVerifier, linkUserId })
    reply.setCookie(OIDC_COOKIE, state, { ...oidcCookieOptions, maxAge: 600 })
    return url
  }

  app.get('/auth/oidc/providers', {
    config: { usesDatabase: false },
    schema: {
      tags: ['oidc'],
      operationId: 'listOidcProviders',
      summary: 'The providers one can sign in with',
      description: 'From `OIDC_PROVIDERS`: each one\'s `id` (for `GET /auth/oidc/{provider}`) and `name` (for its button).',
      response: { 200: OidcProviderListSchema },
    },
  }, async () => ({ items: oidcClients.providers.map(({ id, name }) => ({ id, name })) }))

  app.get('/auth/oidc/:provider', {
    schema: {
      tags: ['oidc'],
      operationId: 'startOidcSignIn',
      summary: 'Sign in with a provider: send the browser here',
      description: 'Navigate the browser (not `fetch`) to this URL. It redirects to the provider\'s authorization endpoint ' +
        '(authorization code flow, PKCE S256, a new `state` and `nonce`) and sets the `__Host-oidc` cookie that binds this sign-in ' +
        'to the browser for 10 minutes. The provider sends the browser back to `GET /auth/oidc/{provider}/callback`, which ends at ' +
        '`redirect_uri#code=…` (or `#error=…`). A provider that does not answer within `OIDC_TIMEOUT` is 503 `service_unavailable`.',
      params: ProviderParams,
      querystring: StartQuery,
      response: {
        302: { type: 'null', description: 'To the provider\'s login page', headers: { ...redirectHeaders, ...setCookieHeader } },
        404: ref(ErrorSchema, '`not_found`: no provider with this id in `OIDC_PROVIDERS`'),
        503: ref(ErrorSchema, '`service_unavailable`: the provider (its discovery document) or the database is unreachable'),
      },
    },
  }, async (request, reply) => {
    const provider = providerOf(request.params.provider)
    const redirectUri = allowedRedirect(request.query.redirect_uri)
    return reply.redirect(await begin(request, reply, provider, redirectUri, null), 302)
  })

  app.get('/auth/oidc/:provider/callback', {
    schema: {
      tags: ['oidc'],
      operationId: 'oidcCallback',
      summary: 'Where the provider sends the browser back (register this URL at the provider)',
      description: 'Not for clients to call: register `https://<this API>/auth/oidc/{provider}/callback` as a redirect URI at the ' +
        'provider. It checks that `state` is this browser\'s (the `__Host-oidc` cookie) and unspent, trades the code for tokens ' +
        '(with the PKCE verifier) and verifies the ID token: signature against the provider\'s JWKS, `iss`, `aud`, `azp`, `exp`, ' +
        '`iat`, `nonce`. Then it redirects to the sign-in\'s `redirect_uri` with, in the fragment:\n' +
        '- `code=…`: a one-time code (2 minutes) for `POST /auth/oidc/exchange`;\n' +
        '- `linked=<provider>`: a link started with `POST /me/identities/{provider}/link` is done;\n' +
        '- `error=…`: `access_denied` (or another error the provider gave), `invalid_state` (not this browser\'s sign-in), ' +
        '`invalid_response` (the code was refused or the ID token did not verify), `service_unavailable` (the provider did not ' +
        'answer within `OIDC_TIMEOUT`), `account_exists` (an account has this email and the provider did not verify it: log in ' +
        'and link the provider from there), `email_required` (the provider gave no email), `identity_taken` (linking: this ' +
        'provider account is another account\'s). Each failure is recorded as an `oidc.failed` event.\n\n' +
        'Without the cookie, or with a state that is unknown, spent or older than 10 minutes, there is no sign-in to go back to: 400 ' +
        '`invalid_oidc_state`.',
      params: ProviderParams,
      querystring: CallbackQuery,
      response: {
        302: { type: 'null', description: 'To `redirect_uri` with `#code=…`, `#linked=…` or `#error=…`', headers: redirectHeaders },
        400: ref(ErrorSchema, '`invalid_oidc_state`: no sign-in of this browser is under way (no `__Host-oidc` cookie, or its state is unknown, spent or expired); ' +
          '`validation_error`: a malformed parameter'),
      },
    },
  }, async (request, reply) => {
    const { provider: providerId } = request.params
    const { state, error } = request.query
    const cookieState = request.headers.cookie === undefined ? undefined : app.parseCookie(request.headers.cookie)[OIDC_COOKIE]
    // Spent or not, the cookie has done its work.
    reply.setCookie(OIDC_COOKIE, '', { ...oidcCookieOptions, maxAge: 0 })
    // The browser's own sign-in, spent now whatever comes next: a state is good for one callback.
    const login: OidcLogin | null = cookieState ? await repos.identities.spendLogin(cookieState) : null
    if (!login) {
      await recordFailure(request, providerId, cookieState ? 'unknown_state' : 'no_state_cookie')
      throw new AppError(400, 'invalid_oidc_state', 'No sign-in of this browser is under way (it was not started here, was used already, or is older than 10 minutes): start again')
    }
    const fail = async (reason: string, detail?: string) => {
      await recordFailure(request, login.provider, reason, detail, login.linkUserId)
      return reply.redirect(withFragment(login.redirectUri, { error: reason }), 302)
    }
    // A state that is not the cookie's: someone else's sign-in pushed into this browser.
    if (state !== cookieState || login.provider !== providerId) return fail('invalid_state', state === cookieState ? 'provider mismatch' : 'state does not match the cookie')
    const provider = oidcClients.find(login.provider)
    if (!provider) return fail('invalid_state', 'provider no longer configured')
    if (error !== undefined) return fail(PROVIDER_ERRORS.has(error) ? error : 'provider_error', request.query.error_description)

    const currentUrl = new URL(login.callbackUri)
    for (const [key, value] of Object.entries(request.query as Record<string, unknown>)) {
      if (typeof value === 'string') currentUrl.searchParams.set(key, value)
    }
    let verified
    try {
      verified = await oidcClients.finish(provider, currentUrl, { state: cookieState!, nonce: login.nonce, codeVerifier: login.codeVerifier })
    } catch (failure) {
      if (!(failure instanceof ProviderError)) throw failure
      return fail(failure.failure, failure.detail)
    }
    const identity = { provider: provider.id, ...verified }

    if (login.linkUserId !== null) {
      const linked = await repos.identities.link(login.linkUserId, identity, eventContext(request))
      if (linked === 'taken') return fail('identity_taken')
      return reply.redirect(withFragment(login.redirectUri, { linked: provider.id }), 302)
    }
    const check = await repos.identities.checkSignIn(identity)
    if (check !== 'ok') return fail(check)
    const code = await repos.identities.issueExchangeCode(identity)
    return reply.redirect(withFragment(login.redirectUri, { code }), 302)
  })

  app.post('/auth/oidc/exchange', {
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['oidc'],
      operationId: 'exchangeOidcCode',
      summary: 'Sign in with a provider, last step: the code for tokens',
      description: 'The `code` from `redirect_uri#code=…` (single-use, 2 minutes) → a new session, as `POST /login` answers: ' +
        'the access token is `fresh` with `amr: ["fed"]`, and with `refresh=cookie` the refresh token is in the `__Host-refresh` ' +
        'cookie. The account is the one the provider account is linked to; else the one with its email, linked now, if the ' +
        'provider verified the email; else a new account without a password (name and email from the ID token; the email ' +
        'verified only if the provider says so).',
      querystring: ExchangeQuery,
      body: ExchangeBody,
      response: {
        200: {
          description: 'A new session, `amr: ["fed"]`; or, for an account with a second factor, the challenge to finish with ' +
            '`POST /login/mfa` (its session then has `amr: ["fed", "otp"]`)',
          anyOf: [ref(TokenPairSchema), ref(MfaChallengeSchema)],
          headers: { 'set-cookie': { type: 'string', description: 'Browser mode: the `__Host-refresh` cookie, as `POST /login?refresh=cookie` sets it' } },
        },
        400: ref(ErrorSchema, '`invalid_exchange_code`: unknown, used or expired; sign in again. `validation_error`: a malformed body'),
        409: ref(ErrorSchema, '`account_exists`: an account has this email, and the provider did not verify it; log in and link the provider from there'),
      },
    },
  }, async (request, reply) => {
    const now = Date.now()
    const sid = newSessionId(now)
    const outcome = await repos.identities.exchange(request.body.code, {
      id: sid, created_at: new Date(now), expires_at: sessionExpiryOf(config, sid, now), ...clientOf(request),
    }, eventContext(request))
    if (outcome.result === 'invalid_code') throw new AppError(400, 'invalid_exchange_code', 'The code is unknown, used or expired: sign in again')
    if (outcome.result === 'account_exists') throw accountExists()
    if (outcome.result === 'mfa_required') {
      return { mfa_required: true as const, mfa_token: outcome.mfaToken, methods: secondFactorsOf({ totp_enabled: true, has_passkey: outcome.hasPasskey }), expires_in: MFA_CHALLENGE_TTL_MS / 1000 }
    }
    const { user } = outcome
    return sendPair(reply, tokens.issuePair(user, sid, true, ['fed']), user, request.query.refresh === 'cookie')
  })

  app.get('/me/identities', {
    config: { auth: true },
    schema: {
      tags: ['oidc'],
      operationId: 'listIdentities',
      summary: 'Your linked provider accounts',
      description: 'Every provider account that signs in to yours, oldest first: linked by a sign-in (a new account, or a verified ' +
        'email) or from a session (`POST /me/identities/{provider}/link`). Not for API keys.',
      response: { 200: IdentityListSchema },
    },
  }, async (request) => ({ items: await repos.identities.list(authOf(request).userId) }))

  app.delete('/me/identities/:id', {
    config: { auth: true },
    schema: {
      tags: ['oidc'],
      operationId: 'unlinkIdentity',
      summary: 'Unlink a provider account',
      description: 'It can no longer sign in to your account. Never your last way to sign in: an account without a password ' +
        'keeps its last identity unless it has a passkey (409 `last_sign_in_method`; set a password first, through `POST /password/forgot`, or add a passkey).',
      params: IdParams,
      response: {
        204: { type: 'null', description: 'Unlinked' },
        404: ref(ErrorSchema, '`not_found`: none of yours has this id'),
        409: ref(ErrorSchema, '`last_sign_in_method`: the account has no password, no other identity and no passkey'),
      },
    },
  }, async (request, reply) => {
    const outcome = await repos.identities.unlink(authOf(request).userId, request.params.id, eventContext(request))
    if (outcome === 'not_found') notFound('Identity')
    if (outcome === 'last') throw new AppError(409, 'last_sign_in_method', 'This is your last way to sign in: set a password first (POST /password/forgot)')
    return reply.code(204).send()
  })

  app.post('/me/identities/:provider/link', {
    config: { auth: true },
    schema: {
      tags: ['oidc'],
      operationId: 'linkIdentity',
      summary: 'Link a provider account to yours (fresh token)',
      description: 'Starts the provider\'s sign-in for the signed-in user: send the browser to `authorization_url` (this ' +
        'answer also sets the `__Host-oidc` cookie, so call it with credentials). The callback links the provider account and ' +
        'redirects to `redirect_uri#linked=<provider>`, or `#error=identity_taken` when it is another account\'s. ' +
        'Needs a fresh token: a new way to sign in is a credential, as a password is.',
      params: ProviderParams,
      body: LinkBody,
      response: {
        200: { ...AuthorizationUrlSchema, description: 'Where to send the browser', headers: setCookieHeader },
        404: ref(ErrorSchema, '`not_found`: no provider with this id in `OIDC_PROVIDERS`'),
        503: ref(ErrorSchema, '`service_unavailable`: the provider or the database is unreachable'),
      },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    const provider = providerOf(request.params.provider)
    const redirectUri = allowedRedirect(request.body.redirect_uri)
    return { authorization_url: await begin(request, reply, provider, redirectUri, auth.userId) }
  })
}

export default oidcRoutes
