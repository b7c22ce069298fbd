import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import fastifyCors from '@fastify/cors'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * The headers helmet sets for these options, worked out once. With a static configuration (no
 * CSP nonces) they are the same for every response. @fastify/helmet, which we used before,
 * builds a new helmet middleware on every request, parsing the CSP again: 13% of the API's CPU
 * time on a board read in npm run bench.
 */
function securityHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  // helmet's middleware is synchronous: it only sets and removes headers, then calls next.
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => { if (error) throw error })
  return headers
}

/** Security headers (helmet's, with our CSP) on every response, and CORS. */
export default fp(async (app) => {
  const headers = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // Swagger UI and the demo page load their scripts from this server only; Swagger UI
        // sets inline styles and uses data: images.
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        // Plain http on localhost is how most people run it; do not force https sub-requests.
        upgradeInsecureRequests: null,
      },
    },
  })
  // onRequest: also on 404s and on errors thrown before the handler.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })

  // Browsers on other origins may call the API only if CORS_ORIGINS names them. Credentials
  // (the browser-mode refresh cookie, API.md §8) only for origins listed by name: `*` would let
  // any page spend a visitor's cookie, and browsers refuse credentials with `*` anyway.
  const origins = app.config.CORS_ORIGINS
  if (origins.length > 0) {
    const anyOrigin = origins.includes('*')
    await app.register(fastifyCors, {
      origin: anyOrigin ? '*' : [...origins],
      credentials: !anyOrigin,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'x-requested-with'],
      exposedHeaders: ['location', 'x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
      maxAge: 600,
    })
  }
}, { name: 'security', dependencies: ['config'] })
