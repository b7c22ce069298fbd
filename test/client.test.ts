import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import openapiTS, { astToString } from 'openapi-typescript'
import { build } from './helper.js'
import { quickstart } from '../examples/quickstart.js'

t.test('the committed client types are generated from the committed openapi.yaml', async (t) => {
  const document = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8')
  const generated = astToString(await openapiTS(document))
  const committed = await readFile(new URL('../examples/api-types.d.ts', import.meta.url), 'utf8')
  // The CLI adds a header comment; compare the declarations.
  t.equal(committed.slice(committed.indexOf('export interface paths')), generated.slice(generated.indexOf('export interface paths')),
    'examples/api-types.d.ts is stale: run `npm run openapi`')
})

t.test('the typed openapi-fetch example works against a running server', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const lines: string[] = []
  const result = await quickstart(`http://127.0.0.1:${port}`, (line) => lines.push(line))
  t.equal(result.board.title, 'Hello from openapi-fetch')
  t.equal(result.board.author.id, result.userId)
  t.equal(result.afterLogout?.code, 'token_revoked', 'the logged-out token is refused')
  t.match(lines, [/^registered user #\d+$/, /^logged in as Quickstart \(user\)$/, /^created board #\d+/, /^my boards: #\d+; next_cursor null$/,
    'refreshed the token pair', 'logged out: 204', 'after logout: 401 token_revoked'])
})
