import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { JwksSchema, PublicJwkSchema } from './schemas.js'

/**
 * How long verifiers may cache the key set. Shorter than JWT_KEY_ACTIVATION_DELAY's default (10 min),
 * so a rotated-in key is in every cache before it signs; a revoked key may linger this long in
 * outside verifiers' caches (this API itself stops accepting it within seconds).
 */
export const JWKS_MAX_AGE_SECONDS = 300

// API.md §9: the public halves of the signing keys. Served from the key ring in memory, so it
// never touches the database and answers during an outage.
const wellKnownRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(PublicJwkSchema)
  app.get('/.well-known/jwks.json', {
    config: { usesDatabase: false },
    schema: {
      tags: ['operations'],
      operationId: 'getJwks',
      summary: 'The public keys that verify access tokens',
      description: 'With `JWT_ALGORITHM` EdDSA or ES256, an outside service verifies an access token with this alone ' +
        '(signature by its `kid`, `exp`, `iss`, `aud`); whether a token was revoked is known only to this API. ' +
        `Cacheable for ${JWKS_MAX_AGE_SECONDS} s. Empty under HS256.`,
      response: { 200: { ...JwksSchema, headers: { 'cache-control': { type: 'string', description: `public, max-age=${JWKS_MAX_AGE_SECONDS}` } } } },
    },
  }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
    return app.keyRing.jwks()
  })
}

export default wellKnownRoutes
