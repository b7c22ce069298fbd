import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import SwaggerParser from '@apidevtools/swagger-parser'
import t from 'tap'
import { parse, stringify } from 'yaml'

// The committed openapi.yaml (test/openapi.test.ts proves it is the generated one) must be a
// valid OpenAPI document and pass Spectral's OpenAPI rules with our committed .spectral.yaml.

const ROOT = new URL('..', import.meta.url).pathname
const COMMITTED = join(ROOT, 'openapi.yaml')
const SPECTRAL = join(ROOT, 'node_modules', '.bin', 'spectral')

interface SpectralResult { code: string, message: string, severity: number, path: string[] }

/** Spectral's findings (errors, warnings, infos and hints) for one document. */
async function spectralLint (file: string): Promise<SpectralResult[]> {
  const directory = await mkdtemp(join(tmpdir(), 'boardkit-spectral-'))
  try {
    const output = join(directory, 'results.json')
    // Exit code 1 means "findings": the JSON file says which, so it is not an error here.
    await promisify(execFile)(SPECTRAL, ['lint', file, '--ruleset', join(ROOT, '.spectral.yaml'), '--format', 'json', '--output', output, '--fail-severity', 'hint', '--quiet'])
      .catch((error: { code?: number }) => { if (error.code !== 1) throw error })
    return JSON.parse(await readFile(output, 'utf8'))
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
}

t.test('openapi.yaml is valid for @apidevtools/swagger-parser', async (t) => {
  const api = await SwaggerParser.validate(COMMITTED)
  t.equal((api as { openapi?: string }).openapi, '3.1.0')
})

t.test('swagger-parser does reject a broken document (the check above can fail)', async (t) => {
  const broken = parse(await readFile(COMMITTED, 'utf8'))
  broken.paths['/me'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nope' }
  await t.rejects(SwaggerParser.validate(broken))
})

t.test('Spectral (spectral:oas with .spectral.yaml) finds nothing, not even a hint', async (t) => {
  const findings = await spectralLint(COMMITTED)
  t.same(findings.map(({ code, message, path }) => `${code} at ${path.join('.')}: ${message}`), [])
})

t.test('Spectral does report a problem in a broken copy (the check above can fail)', async (t) => {
  const broken = parse(await readFile(COMMITTED, 'utf8'))
  delete broken.paths['/me'].get.description
  const directory = await mkdtemp(join(tmpdir(), 'boardkit-broken-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const file = join(directory, 'openapi.yaml')
  await writeFile(file, stringify(broken))
  const findings = await spectralLint(file)
  t.ok(findings.some((finding) => finding.code === 'operation-description'), 'operation-description is reported')
})
