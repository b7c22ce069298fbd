import fp from 'fastify-plugin'
import fastifyHelmet from '@fastify/helmet'
import fastifyCors from '@fastify/cors'

/** Security headers and CORS. */
export default fp(async (app) => {
  await app.register(fastifyHelmet, {
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

  // Browsers on other origins may call the API only if CORS_ORIGINS names them. Tokens travel
  // in the Authorization header, never in cookies, so credentials stay off.
  const origins = app.config.CORS_ORIGINS
  if (origins.length > 0) {
    await app.register(fastifyCors, {
      origin: origins.includes('*') ? '*' : [...origins],
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['location', 'x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
      maxAge: 600,
    })
  }
}, { name: 'security', dependencies: ['config'] })
