// OpenID providers on loopback for the tests of API.md §17.
// - startTestProvider(): panva's oidc-provider (the certified implementation), with a client for
//   us and its development login and consent pages; the test decides each account's claims.
// - startFakeIssuer(): a tiny issuer whose ID tokens the test spoils on purpose (expired, wrong
//   audience, wrong nonce, signed with another key), which no honest provider would issue.
// - Browser: fetch with a cookie jar and manual redirects, to walk a sign-in as a browser does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import Provider from 'oidc-provider'
import type { Test } from 'tap'

export const CLIENT_ID = 'boardkit'
export const CLIENT_SECRET = 'a-client-secret-for-the-tests-only-0123456789'

export interface AccountClaims {
  email?: string
  email_verified?: boolean
  name?: string
}

async function listen (t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as { port: number }).port
}

/**
 * oidc-provider on 127.0.0.1 with our client registered for `callbackUris`. Any login name works
 * (its development pages); the account's claims are `accounts.get(login)`, else a verified
 * `<login>@example.test`.
 */
export async function startTestProvider (t: Test, callbackUris: string[] | (() => string[])) {
  const accounts = new Map<string, AccountClaims>()
  const server = createServer()
  const port = await listen(t, server)
  const issuer = `http://127.0.0.1:${port}`
  // Made at the first request, so a caller may learn its callback URL (the API's port) after
  // learning the issuer's.
  const makeProvider = () => new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: typeof callbackUris === 'function' ? callbackUris() : callbackUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, ...(accounts.get(sub) ?? { email: `${sub}@example.test`, email_verified: true, name: `Test ${sub}` }) }),
    }),
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomBytes(32).toString('hex')] },
  })
  let handle: ReturnType<Provider['callback']> | undefined
  server.on('request', (request: IncomingMessage, response: ServerResponse) => { (handle ??= makeProvider().callback())(request, response) })
  return { issuer, accounts }
}

export interface FakeTokenSettings {
  /** Claims to put in (or override in) the ID token. */
  claims?: Record<string, unknown>
  /** Sign with a key the JWKS does not have. */
  foreignKey?: boolean
}

/**
 * A minimal issuer: discovery, JWKS, an authorization endpoint that sends the browser straight
 * back with a code, and a token endpoint that answers an ID token made per `settings`.
 */
export async function startFakeIssuer (t: Test) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const foreign = await generateKeyPair('ES256')
  const jwk = { ...await exportJWK(publicKey), kid: 'k1', alg: 'ES256', use: 'sig' }
  const pending = new Map<string, { nonce: string | null }>()
  const settings: FakeTokenSettings = {}
  const server = createServer()
  const port = await listen(t, server)
  const issuer = `http://127.0.0.1:${port}`
  const json = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', issuer)
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(response, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      })
    }
    if (url.pathname === '/jwks') return json(response, 200, { keys: [jwk] })
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('hex')
      pending.set(code, { nonce: url.searchParams.get('nonce') })
      const back = new URL(url.searchParams.get('redirect_uri')!)
      back.searchParams.set('code', code)
      back.searchParams.set('state', url.searchParams.get('state') ?? '')
      return response.writeHead(302, { location: back.href }).end()
    }
    if (url.pathname === '/token' && request.method === 'POST') {
      let body = ''
      request.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', async () => {
        const code = new URLSearchParams(body).get('code') ?? ''
        const grant = pending.get(code)
        pending.delete(code)
        if (!grant) return json(response, 400, { error: 'invalid_grant' })
        const now = Math.floor(Date.now() / 1000)
        const idToken = await new SignJWT({
          iss: issuer, sub: 'fake-subject', aud: CLIENT_ID, iat: now, exp: now + 300, nonce: grant.nonce,
          email: 'fake@example.test', email_verified: true, name: 'Fake Person', ...settings.claims,
        }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(settings.foreignKey ? foreign.privateKey : privateKey)
        json(response, 200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, id_token: idToken })
      })
      return
    }
    json(response, 404, { error: 'not_found' })
  })
  return { issuer, settings, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }) }
}

/** A socket that accepts connections and never answers: a provider that hangs. */
export async function startSilentServer (t: Test): Promise<string> {
  const server = createServer(() => { /* never answers */ })
  const port = await listen(t, server)
  return `http://127.0.0.1:${port}`
}

/** fetch as a browser: a cookie jar per host (names only; paths and flags ignored) and redirects followed by hand. */
export class Browser {
  readonly jar = new Map<string, Map<string, string>>()

  cookiesOf (url: string): Map<string, string> {
    const host = new URL(url).host
    let cookies = this.jar.get(host)
    if (!cookies) this.jar.set(host, cookies = new Map())
    return cookies
  }

  async request (url: string, init: RequestInit = {}): Promise<Response> {
    const cookies = this.cookiesOf(url)
    const headers = new Headers(init.headers)
    if (cookies.size > 0) headers.set('cookie', [...cookies].map(([name, value]) => `${name}=${value}`).join('; '))
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const name = pair.slice(0, pair.indexOf('=')).trim()
      const value = pair.slice(pair.indexOf('=') + 1).trim()
      const expired = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute) || /^\s*expires=thu, 01 jan 1970/i.test(attribute))
      if (expired || value === '') cookies.delete(name)
      else cookies.set(name, value)
    }
    return response
  }

  /**
   * Follows redirects from `url`, answering the provider's development pages (log in as `login`,
   * then consent; or cancel with `deny`), until a redirect leaves for `stopAt` (the SPA's page)
   * or a page that is none of those. Returns that last URL and response.
   */
  async walk (url: string, { stopAt, login = 'alice', deny = false }: { stopAt: string, login?: string, deny?: boolean }) {
    let next: { url: string, init?: RequestInit } = { url }
    for (let hops = 0; hops < 20; hops++) {
      if (next.url.startsWith(stopAt)) return { url: next.url, response: null }
      const response = await this.request(next.url, next.init)
      const location = response.headers.get('location')
      if (response.status >= 300 && response.status < 400 && location) {
        next = { url: new URL(location, next.url).href }
        continue
      }
      const html = response.headers.get('content-type')?.includes('text/html') ? await response.text() : ''
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1]
      if (!action || !prompt) return { url: next.url, response }
      if (deny) {
        const abort = /href="([^"]*\/abort)"/.exec(html)?.[1]
        next = { url: new URL(abort!, next.url).href }
        continue
      }
      const form = new URLSearchParams({ prompt, ...(prompt === 'login' && { login, password: 'any' }) })
      next = { url: new URL(action, next.url).href, init: { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } } }
    }
    throw new Error('too many redirects')
  }
}

/** The fields of a URL's fragment. */
export const fragmentOf = (url: string) => Object.fromEntries(new URLSearchParams(new URL(url).hash.slice(1)))
