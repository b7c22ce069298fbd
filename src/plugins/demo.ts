import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'

const files = {
  'index.html': 'text/html; charset=utf-8',
  'demo.js': 'text/javascript; charset=utf-8',
  'demo.css': 'text/css; charset=utf-8',
} as const

/**
 * The demo page at /demo: plain HTML and one script, no build. Read once at start; served from
 * this origin, so the CSP (script-src 'self') holds and the page calls the API without CORS.
 */
const demo: FastifyPluginAsync = async (app) => {
  const folder = new URL('../demo/', import.meta.url)
  for (const [name, type] of Object.entries(files)) {
    const content = await readFile(new URL(name, folder))
    const url = name === 'index.html' ? '/demo' : `/demo/${name}`
    app.get(url, { schema: { hide: true }, config: { usesDatabase: false } }, async (_request, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(content))
  }
}

export default demo
