// First: .env and the thread pool's size, as for the server.
import '../environment.js'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { buildApp, type App } from '../app.js'
import { ConfigError, loadConfig } from '../config.js'
import { DatabaseUnreachableError, prepareDatabase } from '../db/prepare.js'
import { AppError } from '../errors.js'
import { purgeExpired } from '../plugins/purge.js'
import { NO_CONTEXT } from '../repositories/events.js'
import { eventsCommand, EventsUsageError } from './events.js'
import { keysCommand, KeysUsageError } from './keys.js'

const USAGE = `usage: npm run cli -- <command> [options]

commands:
  create-admin --email <email> --name <name>
      Creates an admin account. The password comes from the ADMIN_PASSWORD environment
      variable, or is asked for at a prompt (not echoed).
  keys rotate | list | revoke <kid>
      Signing keys (JWT_ALGORITHM EdDSA or ES256). rotate: a new key, published now, signing
      after JWT_KEY_ACTIVATION_DELAY. list: every key and its state. revoke: every token that
      key signed is refused (on every instance within 5 s); a new key signs at once.
  events export [--since <ISO time or duration, e.g. 7d>]
      Writes the security events (oldest first; all, or those at or after --since) to stdout
      as JSON lines.
  purge-blocklist
      Deletes expired token blocklist rows, spent login-failure windows, events older than
      AUDIT_RETENTION, delivered outbox rows and expired second-factor challenges now (the
      server also does this every BLOCKLIST_PURGE_INTERVAL).
  seed
      Demo data: users alice@example.com (admin), bob@example.com, carol@example.com, all with
      the password "demo-password", and 300 boards. Does nothing if they exist.`

/** Reads a line without echoing it (a TTY), or the first line of stdin (a pipe). */
async function promptPassword (question: string): Promise<string> {
  const { stdin, stderr } = process
  if (!stdin.isTTY) {
    const lines = createInterface({ input: stdin })[Symbol.asyncIterator]()
    const first = await lines.next()
    return first.done ? '' : String(first.value)
  }
  stderr.write(question)
  stdin.setRawMode(true)
  stdin.resume()
  stdin.setEncoding('utf8')
  return new Promise((resolve, reject) => {
    let password = ''
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\u0003') { stdin.setRawMode(false); reject(new Error('cancelled')); return }
        if (char === '\r' || char === '\n') {
          stdin.setRawMode(false); stdin.pause(); stdin.off('data', onData); stderr.write('\n')
          resolve(password)
          return
        }
        password = char === '\u007f' ? password.slice(0, -1) : password + char
      }
    }
    stdin.on('data', onData)
  })
}

async function createAdmin (app: App, args: string[]) {
  const { values } = parseArgs({ args, options: { email: { type: 'string' }, name: { type: 'string' } } })
  if (!values.email || !values.name) throw new UsageError('create-admin needs --email and --name')
  // A CLI argument, not configuration: read here on purpose, and never echoed or logged.
  const password = process.env.ADMIN_PASSWORD ?? await promptPassword('Password for the new admin: ')
  if (password.length < 8 || password.length > 128) throw new UsageError('the password must be 8 to 128 characters')
  const user = await app.repos.users.create({
    email: values.email.trim().toLowerCase(),
    name: values.name.trim(),
    password_hash: await app.passwords.hash(password),
    role: 'admin',
    // The operator typed this address on the server: it needs no mail to be trusted, and the
    // first admin can log in even with REQUIRE_EMAIL_VERIFICATION=true.
    email_verified_at: new Date(),
  }, NO_CONTEXT)
  console.log(`created admin #${user.id} ${user.email}`)
}

async function purgeBlocklist (app: App) {
  const removed = await purgeExpired(app)
  console.log(`removed ${removed.tokens} expired blocklist rows, ${removed.sessions} expired or ended sessions, ${removed.loginFailures} login-failure rows, ${removed.oneTimeTokens} old one-time tokens, ${removed.events} events past AUDIT_RETENTION, ${removed.outbox} finished outbox rows, ${removed.mfaChallenges} expired second-factor challenges and ${removed.passkeyChallenges} expired passkey challenges`)
}

const DEMO_PASSWORD = 'demo-password'
const DEMO_USERS = [
  { email: 'alice@example.com', name: 'Alice Admin', role: 'admin' as const },
  { email: 'bob@example.com', name: 'Bob Builder', role: 'user' as const },
  { email: 'carol@example.com', name: 'Carol Writer', role: 'user' as const },
]

async function seed (app: App) {
  // API.md §12: well-known accounts with a published password are an open door in production.
  if (app.config.NODE_ENV === 'production') throw new ConfigError('seed creates demo accounts with a published password; it refuses to run with NODE_ENV=production')
  const ids: number[] = []
  for (const demo of DEMO_USERS) {
    if (await app.repos.users.findCredentials({ email: demo.email })) {
      console.log(`${demo.email} exists: demo data is already there`)
      return
    }
    // Verified: the demo accounts must log in whatever REQUIRE_EMAIL_VERIFICATION says.
    ids.push((await app.repos.users.create({ ...demo, password_hash: await app.passwords.hash(DEMO_PASSWORD), email_verified_at: new Date() }, NO_CONTEXT)).id)
  }
  const boards = Array.from({ length: 300 }, (_, i) => ({
    title: `Demo board ${i + 1}`,
    content: `Seeded content for board ${i + 1}. Try PATCH /boards/:id as its author or as alice.`,
    user_id: ids[i % ids.length]!,
  }))
  await app.repos.boards.createMany(boards)
  console.log(`seeded ${DEMO_USERS.length} users (password "${DEMO_PASSWORD}") and ${boards.length} boards`)
}

class UsageError extends Error {}

async function main () {
  const [command, ...args] = process.argv.slice(2)
  const commands: Record<string, (app: App, args: string[]) => Promise<void>> = { 'create-admin': createAdmin, 'purge-blocklist': purgeBlocklist, seed, keys: keysCommand, events: eventsCommand }
  const run = command ? commands[command] : undefined
  if (!run) throw new UsageError(command ? `unknown command: ${command}` : 'no command given')

  // A command runs for a moment: it leaves the outbox to the servers (a send cut short by its
  // exit would wait out its lease before another instance retried it).
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'error', OUTBOX_POLL_INTERVAL: '0' })
  await prepareDatabase(config)
  const app = await buildApp(config)
  try {
    await run(app, args)
  } finally {
    await app.close()
  }
}

main().catch((error: unknown) => {
  if (error instanceof UsageError || error instanceof KeysUsageError || error instanceof EventsUsageError) {
    console.error(`boardkit: ${error.message}\n\n${USAGE}`)
  } else if (error instanceof ConfigError || error instanceof DatabaseUnreachableError || error instanceof AppError) {
    console.error(`boardkit: ${error.message}`)
  } else {
    console.error('boardkit:', error)
  }
  process.exit(1)
})
