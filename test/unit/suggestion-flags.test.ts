import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {ERROR_CATALOG} from '@hyper2kvm/plugin-api/host'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Every .ts file under `dir`. */
const sources = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))

interface CommandClass {
  flags?: Record<string, {allowNo?: boolean}>
  baseFlags?: Record<string, {allowNo?: boolean}>
}

/** The flags of every oclif command (`--no-x` for the allowNo ones), plus oclif's own --json and --help. */
async function knownFlags(): Promise<Set<string>> {
  const known = new Set(['json', 'help'])
  for (const file of sources('src/commands')) {
    const command = ((await import(pathToFileURL(file).href)) as {default?: CommandClass}).default
    for (const [name, flag] of Object.entries({...command?.baseFlags, ...command?.flags})) {
      known.add(name)
      if (flag.allowNo) known.add(`no-${name}`)
    }
  }
  return known
}

/** `--flag` names in a text (not `---`, not inside words; camelCase ones like ovftool's --chunkSize are other tools'). */
const flagsNamed = (text: string): string[] => [...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)(?![A-Za-z0-9])/g)].map((m) => m[1]!)

/** The text of every `suggestions: [...]` array in the sources of the CLI and its plugins. */
function suggestionTexts(): Array<{file: string; text: string}> {
  const files = [...sources('src'), ...readdirSync(join(ROOT, 'plugins')).flatMap((p) => sources(join('plugins', p, 'src')))]
  return files.flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/suggestions:\s*\[([\s\S]*?)\]/g)].map((m) => ({file: file.slice(ROOT.length), text: m[1]!})))
}

describe('suggestions name real flags', function () {
  this.timeout(60_000)

  it('every --flag in the error catalog and in any suggestion is a flag of some command', async () => {
    const known = await knownFlags()
    assert.ok(known.has('output-dir') && known.has('work-dir') && known.has('no-fix'), 'the command flags were found')
    const unknown: string[] = []
    for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
      for (const flag of flagsNamed([entry.summary, ...entry.suggestions].join('\n'))) if (!known.has(flag)) unknown.push(`${code}: --${flag}`)
    }
    const texts = suggestionTexts()
    assert.ok(texts.length > 20, `suggestions found in the sources (${texts.length})`)
    for (const {file, text} of texts) for (const flag of flagsNamed(text)) if (!known.has(flag)) unknown.push(`${file}: --${flag}`)
    assert.deepEqual(unknown, [], 'suggestions name flags no command has')
  })
})
