import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
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
 * The passkey ceremonies of the page (API.md §14) go through @simplewebauthn/browser, the
 * counterpart of the server's library: it turns the JSON options into what
 * navigator.credentials wants and the answer back into JSON. Served from this origin, not a
 * CDN: the CSP allows scripts from 'self' only, and a CDN could change what the page runs.
 * The package exports its entry points only, not the bundle, so the bundle is found next to
 * the entry a require() resolves (script/index.js); that works from src/ under tsx and from dist/.
 */
function simpleWebAuthnBundle (): URL {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser')
  return new URL('../dist/bundle/index.umd.min.js', pathToFileURL(entry))
}

/**
 * The demo page at /demo: plain HTML and one script, no build. Read once at start; served from
 * this origin, so the CSP (script-src 'self') holds and the page calls the API without CORS.
 */
const demo: FastifyPluginAsync = async (app) => {
  const folder = new URL('../demo/', import.meta.url)
  const serve = (url: string, type: string, content: Buffer) =>
    app.get(url, { schema: { hide: true }, config: { usesDatabase: false } }, async (_request, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(content))
  for (const [name, type] of Object.entries(files)) {
    const content = await readFile(new URL(name, folder))
    const urls = name === 'index.html' ? ['/demo', ...linkPages.map((page) => `/demo/${page}`)] : [`/demo/${name}`]
    for (const url of urls) serve(url, type, content)
  }
  serve('/demo/vendor/simplewebauthn-browser.js', 'text/javascript; charset=utf-8', await readFile(simpleWebAuthnBundle()))
}

export default demo
