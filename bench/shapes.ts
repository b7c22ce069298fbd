// npm run bench -- --shapes
// Pages on data shapes the main benchmark never has: one author owning every board, two users,
// an author with 1 % of the boards spread through the table, an author with none. MariaDB picks
// plans from table statistics, so a page that is fast on the benchmark's 1 000 users can read
// and sort every board on another shape. Each request runs alone (one connection, one request
// at a time), and its median time is compared with GET /me's on the same shape in the same run.
// Exits 1 when a page takes more than twice as long as GET /me.
import { connect, login, resetDatabase, seed, startApi, waitForQuietDatabase } from './harness.js'

const DATABASE = 'boardkit_bench_shapes'
const BOARDS = 131_072
/** A page may take at most this many times GET /me's median (issue 12). */
const MAX_RATIO = 2
const WARM_UP = 50
const SAMPLES = 300

interface Shape {
  name: string
  users: number
  /** SQL for a board's author from `seq` (1..BOARDS), the sequence row it is made from. */
  authorOf: string
  /** The author whose pages are timed, and a user who has no boards. */
  author: number
  emptyAuthor: number
}

const SHAPES: Shape[] = [
  { name: 'one author owns every board, 2 users', users: 2, authorOf: '1', author: 1, emptyAuthor: 2 },
  { name: '2 authors: 99 % and 1 % spread, 3 users', users: 3, authorOf: 'IF(seq % 100 = 0, 2, 1)', author: 2, emptyAuthor: 3 },
  { name: '1,000 users, boards round robin', users: 1000, authorOf: '1 + seq % 999', author: 7, emptyAuthor: 1000 },
]

/**
 * Median milliseconds of each URL over `SAMPLES` rounds, after `WARM_UP` rounds. A round asks
 * each URL once, in turn, so whatever else the machine does at a moment slows every URL alike.
 * A URL that fails (a 503 when its statement ran past the query timeout) counts as infinitely slow.
 */
async function medianMs (urls: string[], headers: Record<string, string>): Promise<number[]> {
  const times = urls.map((): number[] => [])
  const failed = new Set<number>()
  for (let round = 0; round < WARM_UP + SAMPLES; round++) {
    for (const [i, url] of urls.entries()) {
      if (failed.has(i)) continue
      const started = performance.now()
      const response = await fetch(url, { headers })
      await response.arrayBuffer()
      if (!response.ok) {
        console.error(`  ${url}: HTTP ${response.status}`)
        failed.add(i)
      }
      if (round >= WARM_UP) times[i]!.push(performance.now() - started)
    }
  }
  return times.map((samples, i) => failed.has(i) ? Infinity : samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!)
}

const cursorBefore = (id: number) => Buffer.from(`v1:${id}`).toString('base64url')

export async function benchShapes (): Promise<boolean> {
  const lines = [
    '| shape | GET /me ms | page 1 | deep page | one author\'s page | empty author\'s page |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  let worst = 0
  for (const shape of SHAPES) {
    console.error(`shape: ${shape.name}`)
    await resetDatabase(DATABASE)
    const api = await startApi(DATABASE)
    try {
      await seed(DATABASE, { users: shape.users, boards: 0 })
      const connection = await connect(DATABASE)
      await connection.query(
        `INSERT INTO boards (title, content, user_id) SELECT CONCAT('Board ', seq), REPEAT('Lorem ipsum dolor sit amet. ', 8), ${shape.authorOf} FROM seq_1_to_${BOARDS}`)
      await connection.end()
      await waitForQuietDatabase()
      const session = await login(api.url, 'user1@bench.test')
      const headers = { authorization: `Bearer ${session.access_token}` }
      const pages = [
        `${api.url}/boards?limit=20`,
        `${api.url}/boards?limit=20&cursor=${cursorBefore(BOARDS / 2)}`,
        `${api.url}/boards?limit=20&author_id=${shape.author}`,
        `${api.url}/boards?limit=20&author_id=${shape.emptyAuthor}`,
      ]
      const [me, ...times] = await medianMs([`${api.url}/me`, ...pages], headers) as [number, ...number[]]
      const cells = times.map((ms) => {
        worst = Math.max(worst, ms / me)
        return Number.isFinite(ms) ? `${ms.toFixed(2)} ms (${(ms / me).toFixed(2)}×)` : 'failed (503)'
      })
      lines.push(`| ${shape.name} | ${me.toFixed(2)} | ${cells.join(' | ')} |`)
    } finally {
      await api.stop()
    }
  }
  console.log(`${BOARDS} boards; medians of ${SAMPLES} rounds of sequential requests at one connection; (×) is the ratio to GET /me on the same shape.\n`)
  console.log(lines.join('\n'))
  const pass = worst <= MAX_RATIO
  const slowest = Number.isFinite(worst) ? `${worst.toFixed(2)}× GET /me` : 'a page failed'
  console.log(`\nslowest page: ${slowest} (target: at most ${MAX_RATIO}×): ${pass ? 'pass' : 'FAIL'}`)
  return pass
}
