// Loaded with --import into a server process started by test/ops/telemetry.test.ts: records the
// URL of every module the process resolves and, at exit, writes them to MODULE_PROBE_FILE, so
// the test can tell which modules were loaded. (ES modules have no registry to ask afterwards.)
import { registerHooks } from 'node:module'
import { writeFileSync } from 'node:fs'

const file = process.env.MODULE_PROBE_FILE
const seen = new Set()
if (file) {
  registerHooks({
    resolve (specifier, context, next) {
      const result = next(specifier, context)
      seen.add(result.url)
      return result
    },
  })
  process.on('exit', () => writeFileSync(file, [...seen].join('\n')))
}
