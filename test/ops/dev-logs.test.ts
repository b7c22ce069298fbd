import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { logTransport } from '../../src/app.js'
import { createTestDatabase, freePort, REPO_ROOT, SERVER_ARGS, TEST_SECRET } from '../helper.js'

// Logs are JSON lines for collectors, except for a developer at a terminal (NODE_ENV=development
// and stdout a TTY), who gets pino-pretty's readable lines.

t.test('pino-pretty only in development with a terminal', async (t) => {
  t.match(logTransport({ NODE_ENV: 'development' }, true), { target: 'pino-pretty' })
  t.equal(logTransport({ NODE_ENV: 'development' }, false), undefined, 'development, piped: JSON')
  t.equal(logTransport({ NODE_ENV: 'production' }, true), undefined, 'production at a terminal: JSON')
  t.equal(logTransport({ NODE_ENV: 'test' }, true), undefined, 'test at a terminal: JSON')
})

/** Starts the real server in development; `terminal` gives it a pseudo-terminal (script(1)). */
async function firstLines (t: Test, terminal: boolean): Promise<string> {
  const port = await freePort()
  const DATABASE_URL = await createTestDatabase(t)
  const command = [process.execPath, ...SERVER_ARGS]
  const child = spawn(terminal ? 'script' : command[0]!, terminal ? ['-qfec', command.join(' '), '/dev/null'] : command.slice(1), {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'development', JWT_SECRET: TEST_SECRET, DATABASE_URL, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: script, and the server under it, are stopped together.
    detached: true,
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
    await exited
  })
  const deadline = Date.now() + 60_000
  while (!output.includes(`http://127.0.0.1:${port}`) && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  process.kill(-child.pid!, 'SIGTERM')
  await exited
  return output
}

t.test('the real server: readable lines at a terminal, JSON lines through a pipe', async (t) => {
  const pretty = await firstLines(t, true)
  t.match(pretty, /INFO.*: Server listening at http:\/\/127\.0\.0\.1:\d+/, 'pino-pretty at a terminal')
  t.notMatch(pretty, /^\{/m, 'no JSON line')

  const piped = await firstLines(t, false)
  const lines = piped.trim().split('\n')
  t.ok(lines.length > 0 && lines.every((line) => JSON.parse(line).level !== undefined), 'every line is JSON')
  t.match(piped, '"msg":"Server listening at http://127.0.0.1:')
})
