import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {isBuiltin} from 'node:module'
import {dirname, join, relative, resolve, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const SRC = join(ROOT, 'src')
const API = join(ROOT, 'packages/plugin-api/src')
const PLUGINS = join(ROOT, 'plugins')

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

  it('qemu/ and output/ never import stages/: the contract types they use come from @hyper2kvm/plugin-api', () => {
    const upward = (e: Edge) => (area(e.from) === 'qemu' || area(e.from) === 'output') && area(e.to) === 'stages'
    assert.deepEqual(breaking(upward), [])
    assert.ok(upward({from: 'output/plan-outputs.ts', to: 'stages/stage-types.js', typeOnly: true}), 'the rule sees a type-only import too')
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
    // store: the SqlDb connection the outbox writes through (the engines, not the daemon's store classes).
    const allowed = new Set(['delivery', 'errors', 'secrets', 'store'])
    assert.deepEqual(breaking((e) => area(e.from) === 'delivery' && !allowed.has(area(e.to))), [])
  })

  it('the secrets are a leaf: they import nothing of the daemon, its pieces, the delivery engine or the CLI', () => {
    const upward = new Set(['base-command', 'commands', 'ctl', 'daemon', 'delivery', 'http', 'metrics', 'notify'])
    assert.deepEqual(breaking((e) => area(e.from) === 'secrets' && upward.has(area(e.to))), [])
  })

  /**
   * The pieces beside the daemon take its types only, never its code (nor the job service's: the daemon's
   * too): what they need of it comes through PieceContext (a job's policy, the clock, the JobService), so
   * no daemon ↔ piece cycle forms. One named leaf: the schedules' sweep reads an item's companion files the
   * way intake does (daemon/companions.ts imports nothing of the daemon).
   */
  const PIECES = new Set(['api', 'http', 'metrics', 'notify', 'schedule', 'secrets', 'webhooks'])
  const DAEMON_LEAVES = new Set(['daemon/companions.js'])
  const pieceBreaks = (e: Edge) => PIECES.has(area(e.from)) && (area(e.to) === 'commands' || ((area(e.to) === 'daemon' || area(e.to) === 'service') && !e.typeOnly && !DAEMON_LEAVES.has(e.to)))

  it('the pieces beside the daemon (api, schedule, notify, webhooks, http, metrics, secrets) take its types only, never its code', () => {
    assert.deepEqual(breaking(pieceBreaks), [])
    assert.ok(ALL.some((e) => area(e.from) === 'schedule') && ALL.some((e) => area(e.from) === 'api'), 'the schedule and api areas are seen')
    // The cycle the #13 review found: the window piece reading job definitions with the daemon's own code.
    assert.ok(pieceBreaks({from: 'schedule/window-piece.ts', to: 'daemon/job-definition.js', typeOnly: false}))
    assert.ok(pieceBreaks({from: 'api/api-piece.ts', to: 'service/job-service.js', typeOnly: false}))
    assert.ok(!pieceBreaks({from: 'schedule/window-piece.ts', to: 'daemon/job-policy.js', typeOnly: true}))
  })

  it('the daemon reaches the pieces\' code only where it composes them (daemon-pieces.ts) and parses their keys (config.ts)', () => {
    const composers = new Set(['daemon/daemon-pieces.ts', 'daemon/config.ts'])
    const pieces = new Set([...PIECES].filter((p) => p !== 'secrets'))
    assert.deepEqual(breaking((e) => (area(e.from) === 'daemon' || area(e.from) === 'service') && pieces.has(area(e.to)) && !e.typeOnly && !composers.has(e.from)), [])
  })
})

/** The TypeScript files under `dir`, absolute. */
function tsFiles(dir: string): string[] {
  return (readdirSync(dir, {recursive: true}) as string[]).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f))
}

/** Every module specifier of a file: `import … from`, `export … from`, `import '…'`, `import('…')` (type positions included). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!)
}

/** The text of a file without comments (so a comment that mentions the console is no call of it). */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1')
}

const inside = (dir: string, file: string, spec: string): boolean => {
  const target = resolve(dirname(file), spec)
  return target === dir || target.startsWith(dir + sep)
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')

/**
 * What each import of `files` breaks, by `allowed(file, spec)`, as "file → spec" lines (repository-relative).
 * Each rule is checked on the real tree and, in the same test, shown to catch a planted violation.
 */
function offending(files: readonly string[], allowed: (file: string, spec: string) => boolean): string[] {
  return files.flatMap((file) => specifiers(file).filter((spec) => !allowed(file, spec)).map((spec) => `${relative(ROOT, file)} → ${spec}`))
}

const PLUGIN_DIRS = readdirSync(PLUGINS).filter((name) => existsSync(join(PLUGINS, name, 'package.json')))

/** Code that runs inside a job: the pipeline, what its stages call, the plugin contract and the plugins. */
const STAGE_CODE = [
  ...['stages', 'qemu', 'guest', 'output', 'exec', 'sandbox', 'boot', 'hooks'].flatMap((d) => tsFiles(join(SRC, d))),
  join(SRC, 'plugin-api.ts'),
  ...tsFiles(API),
  ...PLUGIN_DIRS.flatMap((name) => tsFiles(join(PLUGINS, name, 'src'))),
]

const apiAllowed = (file: string, spec: string) => isBuiltin(spec) || (spec.startsWith('.') && inside(API, file, spec))

function pluginAllowed(plugin: string): (file: string, spec: string) => boolean {
  const manifest = JSON.parse(readFileSync(join(PLUGINS, plugin, 'package.json'), 'utf8')) as {dependencies?: Record<string, string>}
  const declared = new Set(Object.keys(manifest.dependencies ?? {}))
  const own = join(PLUGINS, plugin, 'src')
  return (file, spec) => {
    if (isBuiltin(spec)) return true
    if (spec.startsWith('.')) return inside(own, file, spec)
    // The plugin API's root entry only: its `/host` entry is the host's, with no stability promise.
    if (packageOf(spec) === '@hyper2kvm/plugin-api') return spec === '@hyper2kvm/plugin-api' && declared.has(spec)
    return declared.has(packageOf(spec))
  }
}

/** A stage never touches the terminal: no renderer, no listr2, no console or process.stdout/stderr. */
function terminalUse(files: readonly string[]): string[] {
  const render = join(SRC, 'render')
  return [
    ...offending(files, (file, spec) => !(spec.startsWith('.') && inside(render, file, spec)) && packageOf(spec) !== 'listr2'),
    ...files.filter((file) => /\bconsole\s*\.|\bprocess\s*\.\s*(stdout|stderr)\b/.test(code(file))).map((file) => `${relative(ROOT, file)} uses the console`),
  ]
}

/** Write `text` as a file beside `near` for one check, then remove it. */
function planted<T>(near: string, text: string, check: (file: string) => T): T {
  const file = join(near, `zz-planted-violation-${process.pid}.ts`)
  writeFileSync(file, text)
  try {
    return check(file)
  } finally {
    rmSync(file)
  }
}

describe('import boundaries of the plugin API and the plugins', () => {
  it('finds the files and imports it checks', () => {
    assert.ok(tsFiles(API).length > 20)
    assert.deepEqual(PLUGIN_DIRS.sort(), ['aws', 'generic', 'hyperv', 'linux', 'ovf', 'vmware'])
    assert.ok(STAGE_CODE.length > 100, `${STAGE_CODE.length} files`)
    assert.ok(specifiers(join(API, 'index.ts')).includes('./contract/stage-types.js'))
  })

  it('@hyper2kvm/plugin-api imports only node builtins and its own files (it is the floor: nothing of the host)', () => {
    assert.deepEqual(offending(tsFiles(API), apiAllowed), [])
    const planted1 = planted(join(API, 'fs'), "import {H2KError} from '../../../../src/errors/render-error.js'\nimport {execa} from 'execa'\n", (file) => offending([file], apiAllowed))
    assert.equal(planted1.length, 2, planted1.join('\n'))
  })

  for (const plugin of ['aws', 'generic', 'hyperv', 'linux', 'ovf', 'vmware']) {
    it(`plugins/${plugin} imports only node builtins, its own files, @hyper2kvm/plugin-api and the dependencies its package.json declares`, () => {
      assert.deepEqual(offending(tsFiles(join(PLUGINS, plugin, 'src')), pluginAllowed(plugin)), [])
    })
  }

  it('a plugin importing the host, another plugin, the API\'s /host entry or an undeclared package is caught', () => {
    const lines = [
      "import {runTool} from '../../../src/exec/run-tool.js'",
      "import {x} from '../../ovf/src/ovf-xml.js'",
      "import {ERROR_CATALOG} from '@hyper2kvm/plugin-api/host'",
      "import {execa} from 'execa'",
      "import {register} from 'hyper2kvm/plugin-api'",
    ]
    const found = planted(join(PLUGINS, 'generic', 'src'), `${lines.join('\n')}\n`, (file) => offending([file], pluginAllowed('generic')))
    assert.equal(found.length, lines.length, found.join('\n'))
  })

  it('stage code (src/stages, what stages call, the API, the plugins) never imports src/render or listr2 and never uses the console', () => {
    assert.deepEqual(terminalUse(STAGE_CODE), [])
    const text = "import {ListrRenderer} from '../render/listr-renderer.js'\nimport {Listr} from 'listr2'\nexport const shout = () => console.log('hi')\n"
    const found = planted(join(SRC, 'stages'), text, (file) => terminalUse([file]))
    assert.equal(found.length, 3, found.join('\n'))
    assert.deepEqual(planted(join(SRC, 'stages'), "// console.log in a comment is no call\nexport const url = 'http://x'\n", (file) => terminalUse([file])), [])
  })
})
