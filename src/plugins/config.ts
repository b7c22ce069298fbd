import fp from 'fastify-plugin'
import type { Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Makes the configuration, parsed once by loadConfig(), available as `app.config`. */
export default fp<{ config: Config }>(async (app, { config }) => {
  app.decorate('config', config)
  if (config.JWT_SECRET_GENERATED) {
    app.log.warn('JWT_SECRET is not set: generated a random one for this process. Tokens will not survive a restart ' +
      'and other instances will reject them. Set JWT_SECRET (at least 32 bytes) in .env.')
  }
}, { name: 'config' })
