import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyServerOptions } from 'fastify'
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler'
import { AppError, type ErrorCode } from '../errors.js'
import { sendError, toErrorBody } from './errors.js'

// The HTTP edge: what happens to a request between the socket and a route's schema. Bytes that
// are not HTTP, request ids, which bodies are JSON and how, and how path and query text becomes
// typed values. Part of it must be given to Fastify() itself (httpEdgeOptions), the rest is
// this plugin, registered before every other so its hooks run first.

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

/** The part of the edge that only Fastify() takes: options of the server, not of a plugin. */
export const httpEdgeOptions = {
  // Keep a caller's request id only if it is harmless to log and echo back.
  genReqId: (request) => {
    const incoming = request.headers['x-request-id']
    return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
  },
  requestIdHeader: false,
  bodyLimit: 64 * 1024,
  clientErrorHandler: answerClientError,
  // The router answers a bad URL before any hook or error handler runs: give it our shape.
  frameworkErrors: (error, request, reply) => {
    reply.header('x-request-id', request.id)
    return sendError(request, reply, toErrorBody(error))
  },
  // The published types describe the compiler as taking a schema; at run time it takes the route.
  schemaController: { compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory } },
} satisfies FastifyServerOptions

/** Request ids echoed, JSON bodies only, and integers in paths and queries written as integers. */
export default fp(async (app) => {
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
}, { name: 'http-edge' })
