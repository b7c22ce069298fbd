import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { build, newUser } from '../helper.js'

type Response = { statusCode: number, body: string, headers: Record<string, unknown>, json: () => any }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
}

/** API.md §1: exactly the error shape, `details` only on validation_error, nothing leaked. */
function assertError (t: Test, response: Response, statusCode: number, code: string) {
  t.equal(response.statusCode, statusCode, `status ${statusCode}`, { body: response.body })
  t.match(response.headers['content-type'], /^application\/json/, 'a JSON body')
  const body = response.json()
  const keys = code === 'validation_error'
    ? ['code', 'details', 'error', 'message', 'statusCode']
    : ['code', 'error', 'message', 'statusCode']
  t.same(Object.keys(body).sort(), keys, 'exactly the error keys')
  t.equal(body.statusCode, statusCode, 'statusCode in the body matches the status')
  t.equal(body.error, REASONS[statusCode], 'error is the reason phrase')
  t.equal(body.code, code)
  t.type(body.message, 'string')
  t.ok(body.message.length > 0, 'a message')
  t.notMatch(response.body, /stack|\s+at\s+\S+\s+\(|node_modules|\.ts:\d+/i, 'no stack trace')
  t.notMatch(response.body, /\b(select|insert|update|delete)\b.*\b(from|into|set|where)\b|ER_[A-Z_]+|sql/i, 'no SQL')
  return body
}

t.test('error responses', async (t) => {
  const app = await build(t)
  const post = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    app.inject({ method: 'POST', url: '/register', payload, headers })

  t.test('an unknown route is 404 not_found in the error shape', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/no/such/route?x=1' })
    const body = assertError(t, response, 404, 'not_found')
    t.same(Object.keys(body), ['statusCode', 'error', 'code', 'message'])
    t.equal(body.error, 'Not Found')
  })

  t.test('an unknown method on a known path is 404 not_found too', async (t) => {
    assertError(t, await app.inject({ method: 'DELETE', url: '/register' }), 404, 'not_found')
  })

  t.test('malformed JSON is 400 malformed_json', async (t) => {
    assertError(t, await post('{"email": "ada@example.com",'), 400, 'malformed_json')
    assertError(t, await post('not json at all'), 400, 'malformed_json')
  })

  t.test('an empty body with content-type application/json is no body: 400 validation_error where one is required', async (t) => {
    assertError(t, await post(''), 400, 'validation_error')
  })

  t.test('an empty body with content-type application/json is fine where none is needed', async (t) => {
    // /refresh takes its token from the header or the body: no body, no header → 401, not a parse error.
    const response = await app.inject({ method: 'POST', url: '/refresh', headers: { 'content-type': 'application/json' }, payload: '' })
    assertError(t, response, 401, 'authorization_required')
  })

  t.test('a text/plain body is 415 unsupported_media_type', async (t) => {
    assertError(t, await post(JSON.stringify(newUser()), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type')
  })

  t.test('another media type (application/x-www-form-urlencoded) is 415 too', async (t) => {
    assertError(t, await post('email=a%40example.com', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type')
  })

  t.test('a body over 64 KiB is 413 payload_too_large', async (t) => {
    const payload = JSON.stringify({ ...newUser(), name: 'n'.repeat(64 * 1024) })
    t.ok(Buffer.byteLength(payload) > 64 * 1024)
    assertError(t, await post(payload), 413, 'payload_too_large')
  })

  t.test('a body just under 64 KiB is read (and then validated)', async (t) => {
    const payload = JSON.stringify({ ...newUser(), name: 'n'.repeat(60 * 1024) })
    const body = assertError(t, await post(payload), 400, 'validation_error')
    t.equal(body.details[0].path, '/name')
  })

  t.test('a chunked body over 64 KiB (no content-length) is 413 payload_too_large', async (t) => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const response = await new Promise<Response>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/register', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () =>
          resolve({ statusCode: res.statusCode!, body: text, headers: res.headers, json: () => JSON.parse(text) }))
      })
      req.on('error', reject)
      req.write('{"name":"')
      for (let i = 0; i < 20; i++) req.write('n'.repeat(4096))
      req.end('"}')
    })
    assertError(t, response, 413, 'payload_too_large')
  })

  t.test('a __proto__ key is 400 malformed_json', async (t) => {
    const { email, name, password } = newUser()
    const payload = `{"email":${JSON.stringify(email)},"name":${JSON.stringify(name)},"password":${JSON.stringify(password)},"__proto__":{"role":"admin"}}`
    assertError(t, await post(payload), 400, 'malformed_json')
  })

  t.test('a constructor.prototype key is 400 malformed_json', async (t) => {
    assertError(t, await post('{"constructor":{"prototype":{"role":"admin"}}}'), 400, 'malformed_json')
  })

  t.test('a validation error has details, and only it does', async (t) => {
    const body = assertError(t, await post('{}'), 400, 'validation_error')
    t.ok(Array.isArray(body.details) && body.details.length > 0, 'details is a non-empty array')
    for (const detail of body.details) t.same(Object.keys(detail).sort(), ['message', 'path'])
  })

  t.test('a 401 has the same shape', async (t) => {
    assertError(t, await app.inject({ method: 'GET', url: '/me' }), 401, 'authorization_required')
  })
})

t.test('x-request-id', async (t) => {
  const app = await build(t)

  t.test('every response carries one, a generated UUID by default', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/health' })
    t.match(response.headers['x-request-id'], UUID)
    const other = await app.inject({ method: 'GET', url: '/health' })
    t.not(other.headers['x-request-id'], response.headers['x-request-id'], 'a new one per request')
  })

  t.test('error responses carry one too', async (t) => {
    const notFound = await app.inject({ method: 'GET', url: '/nope' })
    t.equal(notFound.statusCode, 404)
    t.match(notFound.headers['x-request-id'], UUID)
    const malformed = await app.inject({ method: 'POST', url: '/register', payload: '{', headers: { 'content-type': 'application/json' } })
    t.equal(malformed.statusCode, 400)
    t.match(malformed.headers['x-request-id'], UUID)
  })

  t.test('a well-formed incoming id is echoed', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123' } })
    t.equal(response.headers['x-request-id'], 'abc-123')
    const notFound = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'abc-123' } })
    t.equal(notFound.headers['x-request-id'], 'abc-123', 'on an error response too')
  })

  for (const [title, incoming] of [
    ['with spaces', 'bad id with spaces'],
    ['of 100 chars', 'a'.repeat(100)],
    ['with a quote and angle brackets', '"><script>'],
    ['empty', ''],
  ] as const) {
    t.test(`an invalid incoming id (${title}) is replaced by a generated UUID`, async (t) => {
      const response = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': incoming } })
      t.equal(response.statusCode, 200)
      t.match(response.headers['x-request-id'], UUID)
      t.not(response.headers['x-request-id'], incoming)
    })
  }
})
