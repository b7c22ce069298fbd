import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'

const files = {
  'index.html': 'text/html; charset=utf-8',
  'demo.js': 'text/javascript; charset=utf-8',
  'demo.css': 'text/css; charset=utf-8',
} as const

// The pages of the mailed links (API.md §10: APP_URL + path + #token=…). With APP_URL pointing at
// the demo (APP_URL=http://host:port/demo), /demo/reset-password#token=… must load the demo page,
// whose script reads the fragment (never sent to the server, so never in a log) and shows the view.
const linkPages = ['reset-password', 'verify-email'] as const

/**
 * The demo page at /demo: plain HTML and one script, no build. Read once at start; served from
 * this origin, so the CSP (script-src 'self') holds and the page calls the API without CORS.
 */
const demo: FastifyPluginAsync = async (app) => {
  const folder = new URL('../demo/', import.meta.url)
  for (const [name, type] of Object.entries(files)) {
    const content = await readFile(new URL(name, folder))
    const urls = name === 'index.html' ? ['/demo', ...linkPages.map((page) => `/demo/${page}`)] : [`/demo/${name}`]
    for (const url of urls) {
      app.get(url, { schema: { hide: true }, config: { usesDatabase: false } }, async (_request, reply) =>
        reply.type(type).header('cache-control', 'no-cache').send(content))
    }
  }
}

export default demo
