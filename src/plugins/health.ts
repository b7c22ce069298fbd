import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ref, ErrorSchema } from '../schemas/shared.js'
import { AppError } from '../errors.js'

const Status = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false, description: 'Up' })

// Not wrapped in fastify-plugin: these routes need nothing from, and give nothing to, the rest.
const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    config: { usesDatabase: false },
    schema: {
      tags: ['operations'],
      operationId: 'getHealth',
      summary: 'Liveness: the process answers',
      description: 'Does not touch the database, so an orchestrator does not restart the API during a database outage.',
      response: { 200: Status },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      tags: ['operations'],
      operationId: 'getReady',
      summary: 'Readiness: the database answers',
      description: 'Runs `SELECT 1` on the pool. 503 while the database is unreachable, so a load balancer stops sending traffic; it turns 200 again by itself when the database is back.',
      response: { 200: Status, 503: ref(ErrorSchema) },
    },
  }, async () => {
    try {
      await app.pool.query('SELECT 1')
    } catch (error) {
      throw new AppError(503, 'service_unavailable', 'The database is not reachable', undefined, { cause: error })
    }
    return { status: 'ok' as const }
  })
}

export default health
