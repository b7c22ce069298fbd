// The configuration table of docs/operations.md is what `npm run docs:config` generates from
// src/config.ts and .env.example: a variable added, removed or changed there fails this test
// until the table is regenerated.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { CONFIG_KEYS } from '../../src/config.js'
import { BEGIN, END, OPERATIONS_PAGE, renderConfigTable, withFreshTable } from '../../scripts/docs-config.js'

t.test('docs/operations.md holds the generated configuration table', async (t) => {
  const page = readFileSync(OPERATIONS_PAGE, 'utf8')
  t.ok(page.includes(BEGIN) && page.includes(END), 'the page has the table\'s markers')
  t.equal(withFreshTable(page), page, 'the table is up to date: if not, run `npm run docs:config` and commit docs/operations.md')
})

t.test('the generated table has a row for every variable, each with a default and a meaning', async (t) => {
  const rows = renderConfigTable().split('\n').filter((line) => line.startsWith('| `'))
  t.same(rows.map((row) => /^\| `([A-Z0-9_]+)`/.exec(row)?.[1]), CONFIG_KEYS, 'one row per variable, in the order of src/config.ts')
  for (const row of rows) {
    const cells = row.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim())
    t.equal(cells.length, 4, `${cells[0]}: four cells`)
    t.ok(cells.every(Boolean), `${cells[0]}: no cell is empty`, { row })
  }
})

t.test('a variable of a later branch shows up by regeneration alone', async (t) => {
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const table = renderConfigTable(example.replace(/^# Prefix of the counters' keys.*$/m, '# A changed comment.'))
  t.match(table, /\| `REDIS_KEY_PREFIX` \| `boardkit:rate-limit:` \| text \| A changed comment\. \|/, 'the meaning comes from .env.example')
})
