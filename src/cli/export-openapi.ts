import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'

// Writes openapi.yaml (or the file named as the first argument) from the route schemas.
// Building the app opens no connection (the pool connects lazily), so this runs without a
// database.
const output = process.argv[2] ? resolve(process.argv[2]) : new URL('../../openapi.yaml', import.meta.url)
const app = await buildApp(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' }))
await app.ready()
await writeFile(output, app.swagger({ yaml: true }))
await app.close()
console.log(`wrote ${String(output).replace(/^file:\/\//, '')}`)
