import fp from 'fastify-plugin'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import { ref, ErrorSchema, sharedSchemas } from '../schemas/shared.js'
import packageJson from '../../package.json' with { type: 'json' }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** False for the few routes that never touch the database (no 503 to document). */
    usesDatabase?: boolean
  }
}

const DESCRIPTION = [
  'Users and their boards behind revocable JWTs.',
  '**Token flow.** `POST /login` returns a short-lived access token and a long-lived refresh token. Send the access token as ' +
    '`Authorization: Bearer <access_token>`. When a request answers 401 `token_expired`, call `POST /refresh` with the refresh ' +
    'token to get a new pair: the old refresh token is then spent, and presenting it again later revokes the whole session. ' +
    '`POST /logout` revokes this session, the other sessions, or all of them, at once on every instance: each request checks ' +
    'its token against the database.',
  '**Sessions.** Each login is a session (the `sid` of its tokens): `GET /sessions` lists yours, `DELETE /sessions/{id}` ends one.',
  '**Browser mode.** A single-page app logs in with `POST /login?refresh=cookie`: the refresh token then lives only in an ' +
    '`HttpOnly` `__Host-refresh` cookie, and `POST /refresh` with `X-Requested-With` and no token reads it.',
  '**Second factor.** With TOTP on (`POST /mfa/totp/setup`, then `/mfa/totp/enable` with a first code), `POST /login` answers ' +
    '`{"mfa_required": true, "mfa_token": "…", "methods": ["totp", "recovery_code"]}` instead of tokens; `POST /login/mfa` ' +
    'with the `mfa_token` and a `code` (or a `recovery_code`) finishes the login. Access tokens carry `amr` (RFC 8176): ' +
    '`["pwd"]`, or `["pwd", "otp"]` after a second factor, kept through refreshes.',
  '**Errors** always have the shape of the `Error` schema; `code` is stable, `message` is not.',
].join('\n\n')

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

const retryAfter = { 'retry-after': { type: 'integer', description: 'Seconds to wait before trying again' } }
const rateLimitHeaders = {
  ...retryAfter,
  'ratelimit-limit': { type: 'integer', description: 'Requests allowed per window (per-IP limits only, IETF draft)' },
  'ratelimit-remaining': { type: 'integer', description: 'Requests left in this window (per-IP limits only)' },
  'ratelimit-reset': { type: 'integer', description: 'Seconds until the window resets (per-IP limits only)' },
}

const example = (statusCode: number, error: string, code: string, message: string, details?: object[]) =>
  ({ statusCode, error, code, message, ...(details && { details }) })

/** What each error status means in this API, the headers it carries and a typical body. */
const ERROR_RESPONSES: Record<string, { description: string, headers?: object, example: object }> = {
  400: {
    description: 'Invalid input: `validation_error` (with `details`) or `malformed_json`; `invalid_mfa_code` for a wrong second-factor code',
    example: example(400, 'Bad Request', 'validation_error', 'Invalid body: /email must match format "email"',
      [{ path: '/email', message: 'must match format "email"' }]),
  },
  401: {
    description: 'No usable token: `authorization_required`, `token_invalid`, `token_expired`, `token_revoked`, ' +
      '`wrong_token_type`, `fresh_token_required`, `invalid_credentials` or `invalid_mfa_token`',
    headers: { 'www-authenticate': { type: 'string', description: 'RFC 6750: `Bearer realm="boardkit"`, with `error="invalid_token"` when a token was sent' } },
    example: example(401, 'Unauthorized', 'token_expired', 'The token has expired'),
  },
  403: { description: '`forbidden`: the caller may not do this; `mfa_required`: an admin right, from a login without a second factor (`MFA_REQUIRED_FOR_ADMINS`)', example: example(403, 'Forbidden', 'forbidden', 'Only the board\'s author or an admin may change it') },
  404: { description: '`not_found`', example: example(404, 'Not Found', 'not_found', 'Board not found') },
  409: { description: 'Conflict: `email_taken` or `last_admin`', example: example(409, 'Conflict', 'email_taken', 'An account with this email already exists') },
  413: {
    description: '`payload_too_large`: the body is over 64 KiB',
    example: example(413, 'Payload Too Large', 'payload_too_large', 'Request body is too large'),
  },
  415: {
    description: '`unsupported_media_type`: a body that is not `application/json`',
    example: example(415, 'Unsupported Media Type', 'unsupported_media_type', 'Unsupported Media Type: text/plain'),
  },
  431: {
    description: '`payload_too_large`: the request headers are over 16 KiB (answered before routing; the connection is then closed)',
    example: example(431, 'Request Header Fields Too Large', 'payload_too_large', 'The request could not be parsed as HTTP'),
  },
  429: {
    description: '`rate_limited`: too many requests from this address, or too many failed logins for this account',
    headers: rateLimitHeaders,
    example: example(429, 'Too Many Requests', 'rate_limited', 'Too many requests; retry in 1 minute'),
  },
  503: {
    description: '`service_unavailable`: the database is unreachable; the API recovers by itself',
    headers: retryAfter,
    example: example(503, 'Service Unavailable', 'service_unavailable', 'The database is not reachable'),
  },
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string }, example?: unknown }> }> }>>
}

/**
 * Give each error response a body example for its own status. The Error schema's examples are
 * those of a 401; without this, Swagger UI would show that 401 body under a 404 or a 503.
 * (@fastify/swagger drops keywords beside a $ref, so this is done on the finished document.)
 */
function withErrorExamples<T extends OpenApiDocument> (document: T): T {
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const media = response.content?.['application/json']
        const example = ERROR_RESPONSES[status]?.example
        if (media?.schema?.$ref !== '#/components/schemas/Error' || !example) continue
        // A copy per response: shared objects would come out as YAML anchors and aliases.
        const missing = path.startsWith('/boards') ? null : path.includes('sessions') ? 'Session' : 'User'
        media.example = status === '404' && missing
          ? { ...example, message: `${missing} not found` }
          : structuredClone(example)
      }
    }
  }
  return document
}

/** Shared schemas, the OpenAPI document, Swagger UI (local assets) and /openapi.{json,yaml}. */
export default fp(async (app) => {
  for (const schema of sharedSchemas) app.addSchema(schema)

  // Document the error responses every route can give, so no route has to repeat them, and
  // say for each what it means and which headers come with it.
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return
    const response = { ...(route.schema.response as Record<string, { $ref?: string, description?: string, headers?: object }>) }
    if (route.schema.body || route.schema.querystring || route.schema.params) response[400] ??= ref(ErrorSchema)
    // Fastify parses a body sent with any of these methods, whether the route wants one or not:
    // a non-JSON body is a 415, an oversized one a 413, broken JSON a 400 malformed_json.
    if ([route.method].flat().some((method) => BODY_METHODS.has(method))) {
      response[400] ??= ref(ErrorSchema)
      response[413] ??= ref(ErrorSchema)
      response[415] ??= ref(ErrorSchema)
    }
    // Per-IP limits may apply to every route (API.md §6), whatever this instance's settings.
    response[429] ??= ref(ErrorSchema)
    // Node's parser refuses oversized headers before any route is chosen (answerClientError in plugins/http-edge.ts).
    response[431] ??= ref(ErrorSchema)
    if (route.config?.usesDatabase !== false) response[503] ??= ref(ErrorSchema)
    for (const [status, schema] of Object.entries(response)) {
      if (schema.$ref === ErrorSchema.$id && !schema.description) {
        const documented = ERROR_RESPONSES[status]
        if (documented) response[status] = { ...schema, description: documented.description, ...(documented.headers && { headers: documented.headers }) }
      }
      if (status === '201') response[status] = { ...schema, headers: { location: { type: 'string', description: 'URL of the new resource' } } }
    }
    route.schema = { ...route.schema, response }
  })

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'boardkit API', version: packageJson.version, description: DESCRIPTION },
      servers: [{ url: '/', description: 'This server' }],
      tags: [
        { name: 'auth', description: 'Register, log in, refresh and revoke tokens' },
        { name: 'users', description: 'Accounts: self-service and administration' },
        { name: 'boards', description: 'Posts, newest first; their author or an admin may change them' },
        { name: 'account', description: 'Password reset and email verification by mailed single-use links' },
        { name: 'sessions', description: 'Where you are signed in: list your sessions, end one' },
        { name: 'mfa', description: 'Second factor: TOTP (an authenticator app) and recovery codes' },
        { name: 'passkeys', description: 'Passkeys (WebAuthn): sign in without a password, or as the second factor' },
        { name: 'admin', description: 'For admins: the audit log of every account' },
        { name: 'api-keys', description: 'Personal access tokens for scripts, CI jobs and Postman' },
        { name: 'oidc', description: 'Sign in with an OpenID Connect provider, and the provider accounts linked to yours' },
        { name: 'operations', description: 'Liveness, readiness and metrics' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access_token from POST /login or POST /refresh' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, for GET /metrics on the API\'s port' },
          // OpenAPI 3.1 lists scopes only for oauth2/openIdConnect schemes; for others the
          // requirement's array holds "roles", which is what a key's scopes are (§4.8.30.2).
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'bk_<prefix>_<secret>',
            description: 'A personal access token from POST /api-keys, limited to its scopes (each operation lists the one it needs; ' +
              'operations without `apiKey` refuse keys with 403 `insufficient_scope`). Scopes: `boards:read`, `boards:write`, `users:read`, `profile`, `admin`.',
          },
          refreshCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: '__Host-refresh',
            description: 'Browser mode: the refresh token in the HttpOnly cookie set by POST /login?refresh=cookie (send X-Requested-With too)',
          },
        },
      },
    },
    // Named components ("Error", "User") instead of def-0, def-1.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (json.$id as string | undefined) ?? `def-${i}` },
    transformObject: (document) => withErrorExamples(('openapiObject' in document ? document.openapiObject : {}) as OpenApiDocument),
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/swagger-ui', uiConfig: { persistAuthorization: true } })

  app.get('/openapi.json', { schema: { hide: true }, config: { usesDatabase: false } }, async () => app.swagger())
  app.get('/openapi.yaml', { schema: { hide: true }, config: { usesDatabase: false } }, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(app.swagger({ yaml: true })))
}, { name: 'docs', dependencies: ['config'] })
