import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const HOOK = fileURLToPath(new URL('../helpers/loaded-modules-hook.mjs', import.meta.url))
const MANIFEST = fileURLToPath(new URL('../../oclif.manifest.json', import.meta.url))

/** The packages that cost start-up time and are needed only by some runs of some commands. */
const HEAVY = ['execa', 'ajv', 'yaml', 'better-sqlite3', 'listr2', 'pino', 'prom-client', 'nodemailer'] as const

/** The npm package a loaded file belongs to (the innermost node_modules), or undefined for our own files. */
function packageOf(path: string): string | undefined {
  const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)
  return match?.[1]
}

/**
 * Which commands may load which heavy packages, measured in a child process running the built CLI
 * (bin/run.js → dist) with a preload that records every module it loads. Cases: what must stay out, and
 * what the run must do (so a command that failed early cannot pass by loading little).
 */
interface Case {
  argv: (dir: string) => string[]
  code: number
  /** Heavy packages this run legitimately needs (convert runs qemu-img through execa). */
  allowed?: readonly (typeof HEAVY)[number][]
  stdout?: RegExp
}

const CASES: Record<string, Case> = {
  // oclif answers from oclif.manifest.json: no command module, so nothing of ours beyond bin/ and the router.
  '--help': {argv: () => ['--help'], code: 0, stdout: /COMMANDS/},
  'convert --help': {argv: () => ['convert', '--help'], code: 0, stdout: /USAGE\n {2}\$ hyper2kvm convert/},
  // Talks to a socket only: not the daemon, its store, logger, metrics or mailer.
  'ctl status (no daemon)': {argv: (dir) => ['ctl', 'status', '--output-dir', dir], code: 12, stdout: /Status: STOPPED/},
  // No configuration file, no job file, not a terminal: no YAML, no ajv, no listr2, none of the daemon's packages.
  'convert --no-fix of a raw disk': {allowed: ['execa'], argv: (dir) => ['convert', join(dir, 'disk.raw'), '--no-fix', '--output-dir', join(dir, 'out')], code: 0, stdout: /disk\.qcow2/},
}

describe('start-up: a command loads only what it uses', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-startup-'))
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'disk.raw'), '1M'])
  })
  after(() => cleanup())

  it('the build wrote oclif.manifest.json with every command (npm run build)', () => {
    assert.ok(existsSync(MANIFEST), 'oclif.manifest.json is missing: npm run build writes it (scripts/manifest.mjs)')
    const commands = Object.keys((JSON.parse(readFileSync(MANIFEST, 'utf8')) as {commands: object}).commands)
    for (const id of ['convert', 'batch', 'daemon', 'ctl:status', 'plugins']) assert.ok(commands.includes(id), `${id} not in the manifest`)
  })

  for (const [name, testCase] of Object.entries(CASES)) {
    it(`${name}: none of ${HEAVY.filter((p) => !testCase.allowed?.includes(p)).join(', ')}`, async () => {
      const list = join(dir, `${name.replace(/\W+/g, '-')}.modules`)
      // A fresh HOME/XDG and cwd with no hyper2kvm.yaml and no HYPER2KVM_* variables: nothing to read or validate.
      const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('HYPER2KVM_')))
      const result = await runCli(testCase.argv(dir), {
        cwd: dir,
        env: {...env, H2K_LOADED_MODULES_FILE: list, HOME: dir, NODE_OPTIONS: `--import=${HOOK}`, XDG_CONFIG_HOME: join(dir, 'config')},
      })
      assert.equal(result.code, testCase.code, result.stderr)
      if (testCase.stdout) assert.match(result.stdout, testCase.stdout)
      const loaded = [...new Set(readFileSync(list, 'utf8').split('\n').filter(Boolean))]
      // The recorder works: oclif itself is always loaded.
      assert.ok(loaded.some((path) => packageOf(path) === '@oclif/core'), `the module list has no @oclif/core: ${loaded.length} entries`)
      const heavy = [...new Set(loaded.map(packageOf).filter((p): p is string => (HEAVY as readonly string[]).includes(p ?? '') && !testCase.allowed?.includes(p as never)))]
      assert.deepEqual(heavy, [], `${name} loaded ${heavy.join(', ')} (${loaded.length} modules)`)
    })
  }
})
