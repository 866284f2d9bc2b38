import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

interface Edge {
  from: string
  to: string
  typeOnly: boolean
}

/** Every relative import and re-export of src/ (static `from '…'` and dynamic `import('…')`), as src-relative paths. */
function edges(): Edge[] {
  const files = (readdirSync(SRC, {recursive: true}) as string[]).filter((f) => f.endsWith('.ts'))
  const found: Edge[] = []
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8')
    for (const m of text.matchAll(/^(?:import|export)(\s+type)?\s*(\{[^}]*\})?[^;'{]*?from '(\.[^']+)'|import\('(\.[^']+)'\)/gms)) {
      const target = relative(SRC, resolve(SRC, dirname(file), m[3] ?? m[4]!))
      // `import type {…}`, or `import {type A, type B}`: erased at compile time, no run-time dependency.
      const names = m[2]?.slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean) ?? []
      const typeOnly = m[1] !== undefined || (names.length > 0 && names.every((n) => n.startsWith('type ')))
      found.push({from: file, to: target, typeOnly})
    }
  }
  return found
}

const area = (path: string): string => path.split('/')[0]!.replace(/\.js$|\.ts$/, '')
const ALL = edges()
const breaking = (rule: (e: Edge) => boolean): string[] => ALL.filter(rule).map((e) => `${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`)

/** The layering the design asks for, held by a test since there is no linter (DESIGN.md §3, §4). */
describe('import boundaries of src/', () => {
  it('finds the imports it checks (the parser did not silently match nothing)', () => {
    assert.ok(ALL.length > 300, `${ALL.length} imports`)
    assert.ok(ALL.some((e) => e.from === 'stages/load-registry.ts' && e.to === 'stages/stage-registry.js'))
  })

  it('nothing outside src/commands imports a command', () => {
    assert.deepEqual(breaking((e) => area(e.to) === 'commands' && area(e.from) !== 'commands'), [])
  })

  it('the pipeline and the plugin contract never reach up into the daemon, its pieces or the CLI', () => {
    const engine = new Set(['archive', 'boot', 'errors', 'exec', 'formats', 'fs', 'guest', 'hooks', 'output', 'plugin-api', 'qemu', 'render', 'sandbox', 'stages'])
    const above = new Set(['base-command', 'commands', 'daemon', 'delivery', 'http', 'jobs', 'metrics', 'notify', 'secrets'])
    assert.deepEqual(breaking((e) => engine.has(area(e.from)) && above.has(area(e.to))), [])
  })

  it('the daemon does not depend on the CLI (base-command, commands, ctl, oclif): the commands use the daemon, not the other way round', () => {
    const cli = new Set(['base-command', 'commands', 'ctl'])
    assert.deepEqual(breaking((e) => area(e.from) === 'daemon' && cli.has(area(e.to))), [])
    const oclif = (readdirSync(join(SRC, 'daemon')) as string[]).filter((f) => f.endsWith('.ts') && /from '@oclif\//.test(readFileSync(join(SRC, 'daemon', f), 'utf8')))
    assert.deepEqual(oclif, [])
  })

  it('the delivery engine (outbox, backoff, signing) knows nothing of the daemon or notifications, so the job service can reuse it', () => {
    // secrets: the redaction of failure reasons before the outbox stores them (a leaf: it imports no daemon code).
    const allowed = new Set(['delivery', 'errors', 'secrets'])
    assert.deepEqual(breaking((e) => area(e.from) === 'delivery' && !allowed.has(area(e.to))), [])
  })

  it('the secrets are a leaf: they import nothing of the daemon, its pieces, the delivery engine or the CLI', () => {
    const upward = new Set(['base-command', 'commands', 'ctl', 'daemon', 'delivery', 'http', 'metrics', 'notify'])
    assert.deepEqual(breaking((e) => area(e.from) === 'secrets' && upward.has(area(e.to))), [])
  })

  it('the pieces beside the daemon (notify, http, metrics, secrets) take its types only, never its code', () => {
    const pieces = new Set(['http', 'metrics', 'notify', 'secrets'])
    assert.deepEqual(breaking((e) => pieces.has(area(e.from)) && (area(e.to) === 'commands' || (area(e.to) === 'daemon' && !e.typeOnly))), [])
  })
})
