import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import httpEdgePlugin, { httpEdgeOptions } from './plugins/http-edge.js'
import configPlugin from './plugins/config.js'
import { serializeLoggedError } from './db/errors.js'
import { trustProxyOption } from './plugins/client-address.js'
import errorsPlugin from './plugins/errors.js'
import shutdownPlugin from './plugins/shutdown.js'
import bodyLimitPlugin from './plugins/body-limit.js'
import securityPlugin from './plugins/security.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import metricsPlugin, { metricsRoute } from './plugins/metrics.js'
import tracingPlugin, { tracingServerOptions } from './plugins/tracing.js'
import purgePlugin from './plugins/purge.js'
import dbPlugin from './plugins/db.js'
import authPlugin from './plugins/auth/index.js'
import docsPlugin from './plugins/docs.js'
import healthPlugin from './plugins/health.js'
import demoPlugin from './plugins/demo.js'
import outboxPlugin from './plugins/outbox.js'
import authRoutes from './routes/auth/index.js'
import userRoutes from './routes/users/index.js'
import boardRoutes from './routes/boards/index.js'
import passwordRoutes from './routes/password/index.js'
import emailRoutes from './routes/email/index.js'
import sessionRoutes from './routes/sessions/index.js'
import mfaRoutes from './routes/mfa/index.js'
import eventRoutes from './routes/events/index.js'
import apiKeyRoutes from './routes/api-keys/index.js'
import wellKnownRoutes from './routes/well-known/index.js'
import oidcRoutes from './routes/oidc/index.js'
import passkeyRoutes from './routes/passkeys/index.js'

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
          '*.access_token', '*.refresh_token', '*.password_hash',
          // The second factor (API.md §13). A TOTP `code` only where a body would be: `code` is
          // also the field of every error line (`invalid_mfa_code`, a driver's `ER_…`).
          '*.secret', '*.otpauth_url', '*.qr_code', '*.mfa_token', '*.recovery_code', '*.recovery_codes', 'body.code', 'req.body.code'],
        censor: '[redacted]',
      },
      // Fastify types `err` as returning a stack; a database error is logged without one, on purpose.
      serializers: { err: serializeLoggedError as (error: unknown) => never },
    },
    ...httpEdgeOptions,
    return503OnClosing: false,
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    ...tracingServerOptions(config),
  }).withTypeProvider<TypeBoxTypeProvider>()

  // What the service is made of, in the order it is put together (each plugin names what it
  // depends on, so a wrong order fails at boot).
  await app.register(httpEdgePlugin)
  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(tracingPlugin)
  await app.register(metricsPlugin)
  await app.register(shutdownPlugin)
  await app.register(bodyLimitPlugin)
  await app.register(securityPlugin)
  await app.register(rateLimitPlugin)
  await app.register(dbPlugin)
  await app.register(purgePlugin)
  await app.register(authPlugin)
  await app.register(outboxPlugin)
  await app.register(docsPlugin)
  await app.register(healthPlugin)
  await app.register(metricsRoute)
  await app.register(authRoutes)
  await app.register(userRoutes)
  await app.register(boardRoutes)
  await app.register(passwordRoutes)
  await app.register(emailRoutes)
  await app.register(sessionRoutes)
  await app.register(mfaRoutes)
  await app.register(eventRoutes)
  await app.register(apiKeyRoutes)
  await app.register(wellKnownRoutes)
  await app.register(oidcRoutes)
  await app.register(passkeyRoutes)
  await app.register(demoPlugin)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
