// First: .env and the thread pool's size, before any module that could use the pool.
import './environment.js'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { DatabaseUnreachableError, prepareDatabase } from './db/prepare.js'

async function main () {
  const config = loadConfig(process.env)
  await prepareDatabase(config)
  const app = await buildApp(config)

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the pool, exit 0.
  closeWithGrace({ delay: 10_000, logger: app.log }, async ({ err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    await app.close()
  })

  await app.listen({ host: config.HOST, port: config.PORT })
}

main().catch((error: unknown) => {
  // Expected start-up failures get one clear line, not a stack trace.
  if (error instanceof ConfigError || error instanceof DatabaseUnreachableError) {
    console.error(`boardkit: ${error.message}`)
  } else {
    console.error('boardkit: failed to start:', error)
  }
  process.exit(1)
})
