import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify from 'fastify'
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import configPlugin from './plugins/config.js'
import errorsPlugin from './plugins/errors.js'
import shutdownPlugin from './plugins/shutdown.js'
import bodyLimitPlugin from './plugins/body-limit.js'
import securityPlugin from './plugins/security.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import purgePlugin from './plugins/purge.js'
import dbPlugin from './plugins/db.js'
import authPlugin from './plugins/auth/index.js'
import docsPlugin from './plugins/docs.js'
import healthPlugin from './plugins/health.js'
import demoPlugin from './plugins/demo.js'
import mailPlugin from './plugins/mail.js'
import { sendError, toErrorBody } from './plugins/errors.js'
import { AppError, type ErrorCode } from './errors.js'
import authRoutes from './routes/auth/index.js'
import userRoutes from './routes/users/index.js'
import boardRoutes from './routes/boards/index.js'
import passwordRoutes from './routes/password/index.js'
import emailRoutes from './routes/email/index.js'
import sessionRoutes from './routes/sessions/index.js'
import wellKnownRoutes from './routes/well-known/index.js'

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

const DECIMAL_INTEGER = /^(0|-?[1-9]\d{0,15})$/

function rejectLooseIntegers (part: string, schema: unknown, values: unknown) {
  const properties = (schema as { properties?: Record<string, { type?: string }> } | undefined)?.properties
  if (!properties || !values) return
  for (const [name, property] of Object.entries(properties)) {
    const value = (values as Record<string, unknown>)[name]
    if (property.type === 'integer' && typeof value === 'string' && !DECIMAL_INTEGER.test(value)) {
      throw new AppError(400, 'validation_error', `Invalid ${part}: /${name} must be an integer`, [{ path: `/${name}`, message: 'must be an integer' }])
    }
  }
}

/**
 * Malformed HTTP that never becomes a request (e.g. 16 KiB of headers): Node's parser rejects
 * it before Fastify, so the answer is written to the socket here, still in our error shape.
 */
function answerClientError (error: NodeJS.ErrnoException, socket: Duplex) {
  if (!socket.writable) return socket.destroy()
  const [status, code]: [number, ErrorCode] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'payload_too_large']
    : [400, 'validation_error']
  const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], code, message: 'The request could not be parsed as HTTP' })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/**
 * Readable lines (pino-pretty) for a developer at a terminal: NODE_ENV=development and stdout a
 * TTY. JSON lines everywhere else, for log collectors. pino-pretty runs in a worker thread that
 * is started, and the package loaded, only in that case.
 */
export function logTransport (config: Pick<Config, 'NODE_ENV'>, stdoutIsTTY = process.stdout.isTTY === true) {
  return config.NODE_ENV === 'development' && stdoutIsTTY
    ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
    : undefined
}

/** The one factory: the server, the tests, the CLIs and the OpenAPI export all build the app here. */
export async function buildApp (config: Config) {
  const app = Fastify({
    logger: {
      level: config.LOG_LEVEL,
      transport: logTransport(config),
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
    return503OnClosing: false,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    clientErrorHandler: answerClientError,
    // The router answers a bad URL before any hook or error handler runs: give it our shape.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id)
      return sendError(request, reply, toErrorBody(error))
    },
    // The published types describe the compiler as taking a schema; at run time it takes the route.
    schemaController: { compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
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

  // Integers in the path and the query string must be written as plain decimal integers
  // (API.md §1). Checked on the raw text, before Ajv's coercion, which reads "0x14", "+20",
  // " 20" and "2e1" as 20, and "Infinity" as a number that passes `maximum`.
  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema
    rejectLooseIntegers('params', schema?.params, request.params)
    rejectLooseIntegers('querystring', schema?.querystring, request.query)
  })

  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(shutdownPlugin)
  await app.register(bodyLimitPlugin)
  await app.register(securityPlugin)
  await app.register(rateLimitPlugin)
  await app.register(dbPlugin)
  await app.register(purgePlugin)
  await app.register(authPlugin)
  await app.register(mailPlugin)
  await app.register(docsPlugin)
  await app.register(healthPlugin)
  await app.register(authRoutes)
  await app.register(userRoutes)
  await app.register(boardRoutes)
  await app.register(passwordRoutes)
  await app.register(emailRoutes)
  await app.register(sessionRoutes)
  await app.register(wellKnownRoutes)
  await app.register(demoPlugin)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
