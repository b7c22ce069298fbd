import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { REPO_ROOT, TS_IMPORT } from '../helper.js'

// `npm run openapi`'s first half, the real process: it writes the document the routes generate,
// which is the committed openapi.yaml (test/openapi.test.ts checks that in-process). Written to a
// temporary file here, so that the committed one is never rewritten while other tests read it.
t.test('export-openapi writes the committed document', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'boardkit-openapi-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const output = join(folder, 'openapi.yaml')
  const child = spawn(process.execPath, [...TS_IMPORT, 'src/cli/export-openapi.ts', output], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.equal(stdout.trim(), `wrote ${output}`)
  t.ok(await readFile(output, 'utf8') === await readFile(join(REPO_ROOT, 'openapi.yaml'), 'utf8'), 'the same bytes as the committed openapi.yaml')
})
