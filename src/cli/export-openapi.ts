import { writeFile } from 'node:fs/promises'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'

// Writes openapi.yaml from the route schemas. Building the app opens no connection (the pool
// connects lazily), so this runs without a database.
const app = await buildApp(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' }))
await app.ready()
await writeFile(new URL('../../openapi.yaml', import.meta.url), app.swagger({ yaml: true }))
await app.close()
console.log('wrote openapi.yaml')
