import { readFile } from 'node:fs/promises'
import t from 'tap'

// The project runs on the Node.js it pins (the `node` package in dependencies: its binary is
// node_modules/.bin/node, which `npm run` puts first on PATH), not on whatever `node` the
// machine has. If the suite ran on anything else, this fails the run, and with it CI.
t.test('the suite runs on the pinned Node.js, 24 or later', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
  const major = Number(process.versions.node.split('.')[0])
  t.ok(major >= 24, `Node.js ${process.versions.node} is 24 or later`)
  t.equal(process.versions.node, pkg.dependencies.node, 'the version package.json pins')
  t.match(pkg.engines.node, /^>=24\b/, 'engines says so too')
})
