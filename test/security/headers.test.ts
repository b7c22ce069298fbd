import t from 'tap'
import { buildApp } from '../../src/app.js'
import { build, freePort, newUser, testConfig } from '../helper.js'

// Security headers (helmet's, with our CSP) on every kind of response: success, error, HTML
// pages and the document. The CSP lets Swagger UI and the demo page work from this server
// alone; test-e2e/browser.e2e.ts proves that in Chromium.

const EXPECTED: Record<string, string> = {
  'content-security-policy': "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';" +
    "img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' 'unsafe-inline';connect-src 'self'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
}

t.test('every response carries the security headers', async (t) => {
  const app = await build(t)
  const limited = await build(t, { DATABASE_URL: String(app.config.DATABASE_URL), RATE_LIMIT_GLOBAL: '1' })
  const down = await buildApp(testConfig({ DATABASE_URL: `mysql://root@127.0.0.1:${await freePort()}/x` }))
  t.teardown(() => down.close())

  const responses = {
    'GET /health (200)': await app.inject({ method: 'GET', url: '/health' }),
    'POST /register (201)': await app.inject({ method: 'POST', url: '/register', payload: newUser() }),
    'POST /register (400)': await app.inject({ method: 'POST', url: '/register', payload: {} }),
    'GET /me (401)': await app.inject({ method: 'GET', url: '/me' }),
    'unknown route (404)': await app.inject({ method: 'GET', url: '/no/such/route' }),
    'POST /register, 100 KiB (413)': await app.inject({ method: 'POST', url: '/register', payload: { name: 'x'.repeat(100 * 1024) } }),
    'POST /register, text/plain (415)': await app.inject({ method: 'POST', url: '/register', payload: 'hi', headers: { 'content-type': 'text/plain' } }),
    'GET /me, rate-limited (429)': await (async () => {
      await limited.inject({ method: 'GET', url: '/health' })
      return limited.inject({ method: 'GET', url: '/health' })
    })(),
    'GET /ready, database down (503)': await down.inject({ method: 'GET', url: '/ready' }),
    'GET /swagger-ui/ (HTML)': await app.inject({ method: 'GET', url: '/swagger-ui/' }),
    'GET /demo (HTML)': await app.inject({ method: 'GET', url: '/demo' }),
    'GET /demo/reset-password (HTML, a mailed link)': await app.inject({ method: 'GET', url: '/demo/reset-password' }),
    'GET /openapi.json': await app.inject({ method: 'GET', url: '/openapi.json' }),
  }
  const statuses = Object.values(responses).map((response) => response.statusCode)
  t.same(statuses, [200, 201, 400, 401, 404, 413, 415, 429, 503, 200, 200, 200, 200], 'control: each response is the kind named')
  for (const [what, response] of Object.entries(responses)) {
    const sent = Object.fromEntries(Object.keys(EXPECTED).map((name) => [name, response.headers[name]]))
    t.same(sent, EXPECTED, `${what}: the security headers`)
    t.notOk(response.headers['x-powered-by'], `${what}: no X-Powered-By`)
  }
})
