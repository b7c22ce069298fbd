// Every relative link of the README, CONTRIBUTING.md and docs/*.md leads somewhere: the file
// exists and, for a #fragment, the heading does. Every page in docs/ is in the README's table
// of pages, and begins by saying what its reader can do after reading it.
import { existsSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import t from 'tap'
import { REPO_ROOT } from '../helper.js'
import { anchors, documentationFiles, links, read } from './markdown.js'

const EXTERNAL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i

t.test('every relative link resolves, anchors included', async (t) => {
  let checked = 0
  for (const file of documentationFiles()) {
    for (const { target, line } of links(read(file))) {
      if (EXTERNAL.test(target)) continue
      checked++
      const [path = '', fragment] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? join(REPO_ROOT, file) : join(REPO_ROOT, dirname(file), decodeURIComponent(path))
      const where = `${file}:${line} → ${target}`
      if (!t.ok(existsSync(resolved) && !relative(REPO_ROOT, resolved).startsWith('..'), `${where}: the file exists in the repository`)) continue
      if (fragment === undefined) continue
      if (!t.ok(statSync(resolved).isFile() && resolved.endsWith('.md'), `${where}: an anchor points into a Markdown file`)) continue
      const offered = anchors(read(relative(REPO_ROOT, resolved)))
      t.ok(offered.has(decodeURIComponent(fragment)), `${where}: the anchor exists`, { anchors: [...offered] })
    }
  }
  t.ok(checked > 30, `links were found and checked (${checked})`)
})

t.test('the README links every page in docs/ from its table', async (t) => {
  const readme = read('README.md')
  const table = readme.split(/^## Documentation[ \t]*$/m)[1]?.split(/^## /m)[0] ?? ''
  t.ok(table.includes('| --- |'), 'the README has a "## Documentation" section with a table')
  for (const page of documentationFiles().filter((file) => file.startsWith('docs/'))) {
    t.match(table, `](${page})`, `the table links ${page}`)
  }
})

t.test('each page in docs/ has a title, then says what its reader can do after reading it', async (t) => {
  for (const page of documentationFiles().filter((file) => file.startsWith('docs/'))) {
    const [title, ...rest] = read(page).split('\n')
    t.match(title, /^# \S/, `${page} begins with a title`)
    const first = rest.find((line) => line.trim() !== '') ?? ''
    t.match(first, /^[A-Z]/, `${page}: a sentence of prose right under its title`, { first })
  }
})

t.test('the link checker itself', async (t) => {
  t.same(links('[a](b.md) `[c](d.md)` ![e](f.png "title")\n```sh\n[g](h.md)\n```\n[i]: j.md'), [
    { target: 'b.md', line: 1 }, { target: 'f.png', line: 1 }, { target: 'j.md', line: 5 },
  ], 'inline links, images and definitions; none from code')
  t.same([...anchors('# A `b` c\n## Faults: what, and how?\n## Faults: what, and how?\n```sh\n# not a heading\n```\n<a id="x"></a>')],
    ['a-b-c', 'faults-what-and-how', 'faults-what-and-how-1', 'x'], "GitHub's anchors: punctuation dropped, repeats numbered")
})
