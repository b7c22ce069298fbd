// Reading the project's Markdown for the documentation tests (test/readme.test.ts,
// test/docs/*.test.ts): which files are documentation, their code blocks with the markers above
// them, their relative links and the anchors their headings make.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../helper.js'

/** The documentation: the README, CONTRIBUTING.md and every page in docs/ (a new page is picked up by itself). */
export function documentationFiles (): string[] {
  const pages = readdirSync(join(REPO_ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)
  return ['README.md', 'CONTRIBUTING.md', ...pages]
}

export const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8')

export const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'zsh', 'console'])

export interface CodeBlock {
  /** The first word of the fence's info string ('' when the fence names none). */
  language: string
  code: string
  /** 1-based line of the opening fence. */
  line: number
  /** The text of `<!-- not run: … -->` on the lines right above the fence, if any. */
  notRun?: string
  /** What `<!-- expect: a | b -->` right above the fence says the page's output must contain. */
  expect: string[]
  /** The last `## ` heading before the block. */
  section: string
}

export function codeBlocks (markdown: string): CodeBlock[] {
  const lines = markdown.split('\n')
  const blocks: CodeBlock[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.*)$/.exec(lines[i]!)
    if (heading) section = heading[1]!.trim()
    const fence = /^(```+|~~~+)(.*)$/.exec(lines[i]!)
    if (!fence) continue
    const closing = new RegExp(`^\\${fence[1]![0]}{${fence[1]!.length},}\\s*$`)
    const close = lines.findIndex((line, j) => j > i && closing.test(line))
    const end = close === -1 ? lines.length : close
    const block: CodeBlock = { language: fence[2]!.trim().split(/\s+/)[0] ?? '', code: lines.slice(i + 1, end).join('\n') + '\n', line: i + 1, expect: [], section }
    for (let j = i - 1; j >= 0 && /^<!--.*-->\s*$/.test(lines[j]!); j--) {
      const notRun = /^<!--\s*not run:(.*)-->\s*$/.exec(lines[j]!)
      if (notRun) block.notRun = notRun[1]!.trim()
      const expect = /^<!--\s*expect:(.*)-->\s*$/.exec(lines[j]!)
      if (expect) block.expect.push(...expect[1]!.split(' | ').map((text) => text.trim()).filter(Boolean))
    }
    blocks.push(block)
    i = end
  }
  return blocks
}

/** The Markdown with the lines of its code blocks blanked. */
function withoutCodeBlocks (markdown: string): string {
  const lines = markdown.split('\n')
  let fence: string | null = null
  return lines.map((line) => {
    const opening = /^(```+|~~~+)/.exec(line)
    if (fence === null && opening) { fence = opening[1]!; return '' }
    if (fence !== null) {
      if (line.startsWith(fence)) fence = null
      return ''
    }
    return line
  }).join('\n')
}

/** The Markdown without its code blocks and inline code, where links are read. */
const prose = (markdown: string) => withoutCodeBlocks(markdown).replace(/`[^`\n]*`/g, '``')

export interface Link { target: string, line: number }

/** Inline links and images `[text](target "title")` and reference definitions `[x]: target`. */
export function links (markdown: string): Link[] {
  const found: Link[] = []
  prose(markdown).split('\n').forEach((line, index) => {
    for (const match of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ target: match[1]!, line: index + 1 })
    const definition = /^\s*\[[^\]]+\]:\s*(\S+)/.exec(line)
    if (definition) found.push({ target: definition[1]!, line: index + 1 })
  })
  return found
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
export function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/<[^>]*>/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

/** Every anchor a page offers: its headings (repeats get -1, -2, …) and explicit id/name attributes. */
export function anchors (markdown: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  // Headings keep the text of their inline code (`## The \`x\` flag` → the-x-flag).
  const text = withoutCodeBlocks(markdown)
  for (const line of text.split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading) {
      const base = slug(heading[1]!)
      const count = seen.get(base) ?? 0
      seen.set(base, count + 1)
      found.add(count === 0 ? base : `${base}-${count}`)
    }
    for (const match of line.matchAll(/\b(?:id|name)="([^"]+)"/g)) found.add(match[1]!)
  }
  return found
}
