import assert from 'node:assert/strict'
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const EXAMPLE = join(ROOT, 'examples', 'plugin-example')
const DOCS = readFileSync(join(ROOT, 'docs', 'plugins.md'), 'utf8')

interface Sample {
  language: string
  code: string
  /** The prose line just before the block: it says whether (and from which file) the sample is the example's code. */
  intro: string
}

function samples(markdown: string): Sample[] {
  const found: Sample[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w+)$/.exec(lines[i]!)
    if (!open) continue
    const end = lines.findIndex((line, j) => j > i && line.trim() === '```')
    const intro = lines.slice(0, i).reverse().find((line) => line.trim() !== '') ?? ''
    found.push({code: lines.slice(i + 1, end).join('\n'), intro, language: open[2]!})
    i = end
  }
  return found
}

const trimmedLines = (text: string): string[] => text.split('\n').map((line) => line.trim()).filter((line) => line !== '')

function containsRun(haystack: string[], needle: string[]): boolean {
  return haystack.some((_, start) => needle.every((line, k) => haystack[start + k] === line))
}

/**
 * docs/plugins.md teaches with the example plugin's real code: every sample marked "(example…)" must be
 * that code, line for line, so the page cannot drift from what CI packs, installs and runs.
 */
describe('docs/plugins.md: the samples marked (example) are the example plugin\'s code', () => {
  const marked = samples(DOCS).filter((s) => s.intro.includes('*(example'))

  it('marks the samples taken from the example', () => {
    assert.ok(marked.filter((s) => s.language === 'ts').length >= 5, `${marked.length} marked samples`)
  })

  for (const [index, sample] of marked.entries()) {
    it(`sample ${index + 1} (${sample.language}): ${sample.intro.trim().slice(-60)}`, () => {
      if (sample.language === 'json') {
        const real = JSON.parse(readFileSync(join(EXAMPLE, 'package.json'), 'utf8'))
        for (const [key, value] of Object.entries(JSON.parse(sample.code))) assert.deepEqual(value, real[key], `package.json ${key}`)
        return
      }
      assert.equal(sample.language, 'ts')
      const named = /`(src\/[\w./-]+)`/.exec(sample.intro)?.[1]
      const files = named ? [named] : readdirSync(join(EXAMPLE, 'src')).map((name) => `src/${name}`)
      const needle = trimmedLines(sample.code)
      assert.ok(
        files.some((file) => containsRun(trimmedLines(readFileSync(join(EXAMPLE, file), 'utf8')), needle)),
        `not found in ${files.join(', ')}:\n${sample.code}`,
      )
    })
  }
})
