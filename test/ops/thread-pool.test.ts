import { spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import t, { type Test } from 'tap'
import { createTestDatabase, freePort, REPO_ROOT, SERVER_ARGS, TEST_SECRET } from '../helper.js'

// The server runs libuv's thread pool with one thread per core (src/environment.ts): each pool
// thread that has hashed a password keeps the hash's 19 MiB, so the threads are as many as the
// hashes that may run at once. An operator's UV_THREADPOOL_SIZE wins.

/** The real server, started and answering; returns the names of its threads. */
async function threadsOfServer (t: Test, env: Record<string, string> = {}): Promise<string[]> {
  const port = await freePort()
  const DATABASE_URL = await createTestDatabase(t)
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', LOG_LEVEL: 'error', JWT_SECRET: TEST_SECRET, JWT_KEY_ENCRYPTION_SECRET: TEST_SECRET, DATABASE_URL, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: 'ignore',
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const deadline = Date.now() + 60_000
  while (!await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.ok, () => false)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the server did not start')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // Start-up has hashed (the dummy hash of src/plugins/auth/passwords.ts), so the pool exists.
  const tasks = await readdir(`/proc/${child.pid}/task`)
  return Promise.all(tasks.map(async (task) => (await readFile(`/proc/${child.pid}/task/${task}/comm`, 'utf8')).trim()))
}

const poolThreads = (names: string[]) => names.filter((name) => name === 'libuv-worker').length

t.test('one pool thread per core by default', async (t) => {
  const names = await threadsOfServer(t)
  t.equal(poolThreads(names), availableParallelism(), `${availableParallelism()} libuv-worker threads (libuv's default is 4)`)
})

t.test("the operator's UV_THREADPOOL_SIZE wins", async (t) => {
  const names = await threadsOfServer(t, { UV_THREADPOOL_SIZE: '5' })
  t.equal(poolThreads(names), 5)
})
