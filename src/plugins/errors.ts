import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, type ErrorCode, type ErrorDetail } from '../errors.js'
import { isDatabaseUnavailable } from '../db/errors.js'

// RFC 6750 §3: every 401 names the scheme; `error="invalid_token"` only when a token was sent.
const TOKEN_ERRORS = new Set<ErrorCode>(['token_invalid', 'token_expired', 'token_revoked', 'wrong_token_type', 'fresh_token_required'])

// Fastify's own errors that a client can cause, and what we call them.
const FASTIFY_CODES: Record<string, [number, ErrorCode]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'malformed_json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'malformed_json'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'unsupported_media_type'],
  // Raised by the router, before any hook: a badly escaped URL or a path parameter longer than
  // any id could be.
  FST_ERR_BAD_URL: [400, 'validation_error'],
  FST_ERR_MAX_PARAM_LENGTH: [400, 'validation_error'],
}

const FALLBACK_CODES: Record<number, ErrorCode> = {
  400: 'validation_error', 401: 'authorization_required', 403: 'forbidden', 404: 'not_found',
  413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 503: 'service_unavailable',
}

interface ErrorBody {
  statusCode: number
  error: string
  code: ErrorCode
  message: string
  details?: ErrorDetail[]
}

function body (statusCode: number, code: ErrorCode, message: string, details?: ErrorDetail[]): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...(details && { details }) }
}

/** Ajv errors → `{path, message}` with a JSON pointer to the offending field. */
function validationDetails (error: FastifyError): ErrorDetail[] {
  return (error.validation ?? []).map((issue) => {
    const params = issue.params as { missingProperty?: string, additionalProperty?: string }
    const field = params.missingProperty ?? params.additionalProperty
    const path = field ? `${issue.instancePath}/${field}` : issue.instancePath
    const message = params.additionalProperty ? 'is not an allowed property' : issue.message ?? 'is invalid'
    return { path: path || '/', message }
  })
}

/** Turns any error into the contract's shape (API.md §1). Exported for tests of the mapping. */
export function toErrorBody (error: FastifyError | AppError | Error): ErrorBody {
  if (error instanceof AppError) return body(error.statusCode, error.code, error.message, error.details)
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    const details = validationDetails(fastifyError)
    const where = fastifyError.validationContext ?? 'request'
    return body(400, 'validation_error', `Invalid ${where}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details)
  }
  const known = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined
  if (known) return body(known[0], known[1], fastifyError.message)
  if (isDatabaseUnavailable(error)) return body(503, 'service_unavailable', 'The database is unavailable; try again shortly')
  // secure-json-parse refuses __proto__/constructor keys with a SyntaxError the parser marks 400.
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) return body(400, 'malformed_json', 'The body is not acceptable JSON')
  const status = fastifyError.statusCode
  if (status && status >= 400 && status < 500) return body(status, FALLBACK_CODES[status] ?? 'validation_error', fastifyError.message)
  return body(500, 'internal_error', 'Something went wrong on our side; the request id is in the x-request-id header')
}

export function sendError (request: FastifyRequest, reply: FastifyReply, error: ErrorBody) {
  if (error.statusCode === 401) {
    reply.header('www-authenticate', TOKEN_ERRORS.has(error.code)
      ? `Bearer realm="boardkit", error="invalid_token", error_description="${error.message.replace(/["\\]/g, '')}"`
      : 'Bearer realm="boardkit"')
  }
  if (error.statusCode === 503) reply.header('retry-after', '5')
  return reply.code(error.statusCode).send(error)
}

/** The only error and not-found handlers. fastify-plugin, because setErrorHandler is encapsulated. */
export default fp(async (app) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const response = toErrorBody(error)
    if (error instanceof AppError && error.headers) reply.headers(error.headers)
    if (response.statusCode >= 500) {
      // The cause stays in the log, with the request id; the client sees only the fixed message.
      request.log.error({ err: error }, response.code)
    } else {
      request.log.info({ code: response.code, statusCode: response.statusCode }, response.message)
    }
    return sendError(request, reply, response)
  })

  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, body(404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`)))
}, { name: 'errors' })
