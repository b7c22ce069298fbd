import * as oidc from 'openid-client'
import { isLoopbackHost, type OidcProvider } from '../config.js'

// The relying party (API.md §17), thin over openid-client (panva's certified one): discovery, the
// authorization URL with PKCE S256, state and nonce, and the code grant that verifies the ID
// token (signature against the issuer's JWKS, iss, aud, azp, exp, iat, nonce). No provider has a
// branch of its own here: everything that differs is in OIDC_PROVIDERS.

/** Discovery is read again after this long (a provider may move an endpoint or add keys). */
const DISCOVERY_TTL_MS = 60 * 60_000
/** After a failed discovery, calls within this time fail at once instead of waiting again. */
const FAILURE_BACKOFF_MS = 5_000

/** Why a sign-in failed, as the browser is told (`#error=`) and the event records it. */
export type OidcFailure =
  /** The provider did not answer, answered 5xx, or too late (OIDC_TIMEOUT). */
  | 'service_unavailable'
  /** The provider refused the code (spent, expired, not ours) or its answer did not verify: bad
   *  signature, wrong iss, aud or azp, expired or future ID token, nonce mismatch. */
  | 'invalid_response'

export class ProviderError extends Error {
  override name = 'ProviderError'
  constructor (readonly failure: OidcFailure, readonly detail: string, options?: ErrorOptions) {
    super(detail, options)
  }
}

/**
 * What went wrong in a call to the provider, in our two kinds. Network errors (fetch's TypeError),
 * timeouts and 5xx are the provider being down; everything else is an answer we refuse.
 */
export function classify (error: unknown): ProviderError {
  if (error instanceof ProviderError) return error
  const code = (error as { code?: string }).code
  const status = (error as { status?: number, cause?: { status?: number } }).status ?? (error as { cause?: { status?: number } }).cause?.status
  const detail = code ? `${code}: ${(error as Error).message}` : (error as Error)?.message ?? String(error)
  if (error instanceof TypeError && !code) return new ProviderError('service_unavailable', `unreachable: ${detail}`, { cause: error })
  if (code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT' || (error as Error)?.name === 'TimeoutError') {
    return new ProviderError('service_unavailable', `timed out: ${detail}`, { cause: error })
  }
  if (typeof status === 'number' && status >= 500) return new ProviderError('service_unavailable', `status ${status}: ${detail}`, { cause: error })
  return new ProviderError('invalid_response', detail, { cause: error })
}

export interface VerifiedIdentity {
  issuer: string
  subject: string
  email: string | null
  /** Only a literal `true` from the provider counts (OpenID Connect Core §5.1). */
  emailVerified: boolean
  name: string | null
}

export interface AuthorizationRequest {
  url: string
  state: string
  nonce: string
  codeVerifier: string
}

export function createOidcClients (providers: readonly OidcProvider[], timeoutMs: number) {
  const byId = new Map(providers.map((provider) => [provider.id, provider]))
  // One discovery per provider and process, shared by concurrent requests. openid-client keeps
  // the JWKS in the Configuration and fetches it again when an ID token names a kid it has not
  // seen (a key rotation), so keys need no cache of ours.
  const cache = new Map<string, { config: Promise<oidc.Configuration>, at: number, failed: boolean }>()
  // openid-client counts in seconds.
  const timeout = timeoutMs / 1000

  async function discover (provider: OidcProvider): Promise<oidc.Configuration> {
    const issuer = new URL(provider.issuer)
    // http:// only on loopback, which loadConfig() already made sure of.
    const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname)
    try {
      // enableNonRepudiationChecks: openid-client skips the ID token's signature when the token
      // came straight from the token endpoint over TLS (OpenID Connect Core §3.1.3.7, 6.); we
      // check it always, against the issuer's JWKS (fetched again for a kid not seen yet).
      return await oidc.discovery(issuer, provider.client_id, { client_secret: provider.client_secret }, undefined,
        { timeout, execute: [oidc.enableNonRepudiationChecks, ...(insecure ? [oidc.allowInsecureRequests] : [])] })
    } catch (error) {
      throw classify(error)
    }
  }

  /** The provider's Configuration, discovered at first use and again after DISCOVERY_TTL_MS. */
  function configurationOf (provider: OidcProvider): Promise<oidc.Configuration> {
    const now = Date.now()
    const cached = cache.get(provider.id)
    if (cached && now - cached.at < (cached.failed ? FAILURE_BACKOFF_MS : DISCOVERY_TTL_MS)) return cached.config
    const entry = { config: discover(provider), at: now, failed: false }
    entry.config.catch(() => { entry.failed = true })
    cache.set(provider.id, entry)
    return entry.config
  }

  return {
    providers,
    find: (id: string): OidcProvider | undefined => byId.get(id),

    /** Where to send the browser: the provider's authorization endpoint with a new state, nonce and PKCE challenge. */
    async authorizationRequest (provider: OidcProvider, callbackUri: string): Promise<AuthorizationRequest> {
      const config = await configurationOf(provider)
      const state = oidc.randomState()
      const nonce = oidc.randomNonce()
      const codeVerifier = oidc.randomPKCECodeVerifier()
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: callbackUri,
        scope: provider.scopes.join(' '),
        response_type: 'code',
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      })
      return { url: url.href, state, nonce, codeVerifier }
    },

    /**
     * The callback: trades the code for tokens (with the PKCE verifier) and verifies the ID token
     * against what this sign-in sent. `currentUrl` is the callback URL the provider redirected to.
     */
    async finish (provider: OidcProvider, currentUrl: URL, checks: { state: string, nonce: string, codeVerifier: string }): Promise<VerifiedIdentity> {
      const config = await configurationOf(provider)
      try {
        const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          pkceCodeVerifier: checks.codeVerifier,
          idTokenExpected: true,
        })
        const idToken = tokens.claims()
        if (!idToken) throw new ProviderError('invalid_response', 'no ID token in the token response')
        // With an access token issued, a provider may keep the profile claims (email, name) out of
        // the ID token and answer them at its UserInfo endpoint (OpenID Connect Core §5.4): then
        // they are read there, for the same subject (§5.3.2: a different sub is refused).
        const profile: Record<string, unknown> = idToken.email === undefined && config.serverMetadata().userinfo_endpoint
          ? { ...await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub), ...idToken }
          : idToken
        const email = typeof profile.email === 'string' && profile.email.length <= 254 ? profile.email.trim().toLowerCase() : null
        const name = typeof profile.name === 'string' && profile.name.trim() ? profile.name.trim().slice(0, 80) : null
        return { issuer: idToken.iss, subject: idToken.sub, email, emailVerified: email !== null && profile.email_verified === true, name }
      } catch (error) {
        throw classify(error)
      }
    },
  }
}

export type OidcClients = ReturnType<typeof createOidcClients>
