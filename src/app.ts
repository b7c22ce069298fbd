import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import configPlugin from './plugins/config.js'
import errorsPlugin from './plugins/errors.js'
import securityPlugin from './plugins/security.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import purgePlugin from './plugins/purge.js'
import dbPlugin from './plugins/db.js'
import authPlugin from './plugins/auth/index.js'
import docsPlugin from './plugins/docs.js'
import healthPlugin from './plugins/health.js'
import authRoutes from './routes/auth/index.js'
import userRoutes from './routes/users/index.js'
import boardRoutes from './routes/boards/index.js'

const REQUEST_ID = /^[\w.-]{1,64}$/

const ajvOptions = {
  // Unknown properties are rejected (additionalProperties: false on every body), not stripped.
  removeAdditional: false,
  useDefaults: true,
  // Ajv stops at the first error: allErrors on hostile input is a known DoS vector.
  allErrors: false,
} as const

// Query strings and path params arrive as text, so they are coerced ("42" → 42). Bodies are
// JSON and keep their types: `{"password": 12345678}` is a 400, not the string "12345678".
function buildValidator (externalSchemas: unknown, options?: object) {
  const buildCompiler = AjvCompiler()
  const coercing = buildCompiler(externalSchemas as never, { ...options, customOptions: { ...ajvOptions, coerceTypes: 'array' } })
  const strict = buildCompiler(externalSchemas as never, { ...options, customOptions: { ...ajvOptions, coerceTypes: false } })
  return (route: { httpPart?: string }) => (route.httpPart === 'body' ? strict : coercing)(route as never)
}

/** The one factory: the server, the tests, the CLIs and the OpenAPI export all build the app here. */
export async function buildApp (config: Config) {
  const app = Fastify({
    logger: {
      level: config.LOG_LEVEL,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.current_password', '*.new_password',
          '*.access_token', '*.refresh_token', '*.password_hash'],
        censor: '[redacted]',
      },
    },
    // Keep a caller's request id only if it is harmless to log and echo back.
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    requestIdHeader: false,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    // The published types describe the compiler as taking a schema; at run time it takes the route.
    schemaController: { compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (request, reply) => { reply.header('x-request-id', request.id) })
  // JSON only: without this, a text/plain body reaches validation as a string.
  app.removeContentTypeParser('text/plain')
  // An empty body is no body, even with Content-Type: application/json (many clients send the
  // header on every request, DELETE included). Routes that need a body then answer 400
  // validation_error. Non-empty bodies go through Fastify's parser, which refuses
  // __proto__ and constructor keys.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined)
    else parseJson(request, body as string, done)
  })

  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(securityPlugin)
  await app.register(rateLimitPlugin)
  await app.register(dbPlugin)
  await app.register(purgePlugin)
  await app.register(authPlugin)
  await app.register(docsPlugin)
  await app.register(healthPlugin)
  await app.register(authRoutes)
  await app.register(userRoutes)
  await app.register(boardRoutes)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
