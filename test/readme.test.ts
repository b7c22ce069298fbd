// The README and the pages in docs/ work as written. The README's walkthrough is run and its
// output read closely; every other shell block of README.md, CONTRIBUTING.md and docs/*.md is
// run too, the blocks of a page in order in one shell against a server of its own, unless the
// line above it says `<!-- not run: why -->`. `<!-- expect: a | b -->` above a block names text
// the page's output must contain. A new page in docs/ is picked up by itself.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection } from 'mysql2/promise'
import t, { type Test } from 'tap'
import { freePort, REPO_ROOT, SERVER_ARGS, SERVER_URL } from './helper.js'
import { codeBlocks, documentationFiles, read, SHELL_LANGUAGES, type CodeBlock } from './docs/markdown.js'

const README_URL = 'http://127.0.0.1:3000'

/** The first ```sh block after the `## Walkthrough (curl)` heading (and before the next `## `). */
function walkthroughScript (readme: string): string {
  const section = readme.split(/^## Walkthrough \(curl\)[ \t]*$/m)[1]
  if (section === undefined) throw new Error('README.md has no "## Walkthrough (curl)" section')
  const match = /^```sh\n([\s\S]*?)^```/m.exec(section.split(/^## /m)[0]!)
  if (!match) throw new Error('the Walkthrough section has no ```sh block')
  return match[1]!
}

/**
 * curl -s prints a body without a trailing newline, so the outputs of consecutive commands may
 * run together on one line: split the output into its JSON values and its other text.
 */
function splitOutput (output: string): Array<unknown> {
  const parts: Array<unknown> = []
  let i = 0
  while (i < output.length) {
    if (/\s/.test(output[i]!)) { i++; continue }
    if (output[i] === '{' || output[i] === '[') {
      let depth = 0
      let inString = false
      let j = i
      for (; j < output.length; j++) {
        const c = output[j]
        if (inString) {
          if (c === '\\') j++
          else if (c === '"') inString = false
        } else if (c === '"') inString = true
        else if (c === '{' || c === '[') depth++
        else if ((c === '}' || c === ']') && --depth === 0) break
      }
      parts.push(JSON.parse(output.slice(i, j + 1)))
      i = j + 1
    } else {
      const end = output.slice(i).search(/[\s{[]/)
      const token = end === -1 ? output.slice(i) : output.slice(i, i + end)
      parts.push(token)
      i += token.length
    }
  }
  return parts
}

/**
 * The real server, as `npm start` runs it, on a database and a port of its own, stopped and its
 * database dropped when `t` ends. Its output goes to `logFile` (the pages read mails from it),
 * or is kept for the failure message. Resolves to its URL, or undefined (and a failure) if it
 * did not start.
 */
async function startServer (t: Test, logFile?: string): Promise<string | undefined> {
  const database = `boardkit_t_readme_${randomBytes(4).toString('hex')}`
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const log = logFile === undefined ? 'pipe' : openSync(logFile, 'a')
  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: String(port), DATABASE_URL: `${SERVER_URL}/${database}`, LOG_LEVEL: logFile === undefined ? 'warn' : 'info' },
    stdio: ['ignore', log, log],
  })
  if (typeof log === 'number') closeSync(log)
  let serverOutput = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { serverOutput += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { serverOutput += chunk })
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    const connection = await createConnection(SERVER_URL)
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
  })

  let up = false
  for (const deadline = Date.now() + 30_000; !up && Date.now() < deadline && child.exitCode === null;) {
    up = await fetch(`${url}/health`).then((response) => response.ok, () => false)
    if (!up) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (logFile !== undefined) serverOutput = readFileSync(logFile, 'utf8')
  return t.ok(up, 'the server starts', { serverOutput }) ? url : undefined
}

t.test('the README walkthrough works as written', async (t) => {
  const script = walkthroughScript(await readFile(new URL('../README.md', import.meta.url), 'utf8'))
  t.match(script, README_URL, `the walkthrough talks to ${README_URL}`)

  const url = await startServer(t)
  if (!url) return

  // stdin from /dev/null: with a socket on stdin bash thinks it runs under rshd and reads ~/.bashrc.
  const result = spawnSync('bash', ['-c', script.replaceAll(README_URL, url)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(result.status, 0, 'the script exits 0', { stdout: result.stdout, stderr: result.stderr })
  t.equal(result.stderr, '', 'nothing on stderr')
  const output = result.stdout
  t.match(output, '"email":"ada@example.com"', 'the registered user is printed')

  const parts = splitOutput(output)
  t.equal(parts.length, 4, 'four outputs: the new user, /me, the logout status, the revoked /me', { output })
  const [registered, me, status, revoked] = parts as [Record<string, unknown>, Record<string, unknown>, string, Record<string, unknown>]
  t.match(registered, { id: Number, email: 'ada@example.com', name: 'Ada Lovelace', role: 'user' }, 'register: the user JSON')
  t.notOk(registered && 'password' in registered, 'no password in the user JSON')
  const { mfa, ...meUser } = me ?? {}
  t.same(meUser, registered, '/me: the same user')
  t.same(mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, '/me: and no second factor (API.md §13)')
  t.equal(status, '204', 'logout: 204')
  t.match(output, /204\n/, '204 ends its line')
  t.same(revoked && Object.keys(revoked).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(revoked, { statusCode: 401, error: 'Unauthorized', code: 'token_revoked' }, 'the last /me: 401 token_revoked')
  t.match(output.trimEnd(), /"code":"token_revoked"[^\n]*$/, 'token_revoked is the last thing printed')
})

const isWalkthrough = (file: string, block: CodeBlock) => file === 'README.md' && block.section === 'Walkthrough (curl)'
const runsHere = (file: string, block: CodeBlock) => SHELL_LANGUAGES.has(block.language) && block.notRun === undefined && !isWalkthrough(file, block)

t.test('every code block names its language, and every shell block is run or says why not', async (t) => {
  for (const file of documentationFiles()) {
    for (const block of codeBlocks(read(file))) {
      const where = `${file}:${block.line}`
      t.not(block.language, '', `${where}: the block names its language (a shell block must not pass unseen)`)
      if (block.notRun !== undefined) {
        t.ok(SHELL_LANGUAGES.has(block.language), `${where}: "not run" marks a shell block`)
        t.ok(block.notRun.length >= 10, `${where}: "not run" says why`, { reason: block.notRun })
        t.notOk(isWalkthrough(file, block), `${where}: not the README's walkthrough, which must run`)
      }
      if (block.expect.length > 0) t.ok(runsHere(file, block) || isWalkthrough(file, block), `${where}: "expect" is on a block that runs`)
    }
  }
  const walkthroughs = codeBlocks(read('README.md')).filter((block) => isWalkthrough('README.md', block))
  t.equal(walkthroughs.length, 1, 'the README has one walkthrough block')
})

t.test('the shell blocks of each page work as written', async (t) => {
  for (const file of documentationFiles()) {
    const blocks = codeBlocks(read(file)).filter((block) => runsHere(file, block))
    if (blocks.length === 0) continue
    t.test(file, async (t) => {
      // The page's shell runs in a directory of its own, where the server's log is boardkit.log.
      const directory = mkdtempSync(join(tmpdir(), 'boardkit-docs-'))
      t.teardown(() => rmSync(directory, { recursive: true, force: true }))
      const url = await startServer(t, join(directory, 'boardkit.log'))
      if (!url) return
      const script = ['set -e', ...blocks.map((block) => `# ${file}:${block.line}\n${block.code}`)].join('\n').replaceAll(README_URL, url)
      const result = spawnSync('bash', ['-c', script], {
        cwd: directory,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        encoding: 'utf8',
        timeout: 120_000,
      })
      const output = result.stdout
      t.equal(result.status, 0, `the ${blocks.length} block(s) run to the end and exit 0`, { stdout: output, stderr: result.stderr, script })
      t.equal(result.stderr, '', 'nothing on stderr')
      t.notMatch(output, /"statusCode":5\d\d/, 'no 5xx answer')
      for (const expected of blocks.flatMap((block) => block.expect)) t.match(output, expected, `the output has ${expected}`)
    })
  }
})
