import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {GUEST_CACHE, guestPath} from '../helpers/test-guests.js'

const EXAMPLE = fileURLToPath(new URL('../../examples/plugin-example/', import.meta.url))
const HOST_VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string
const RECORD = '/etc/hyper2kvm-migrated'
const STAGE = 'fixer:migration-marker'
/** libguestfs on an output disk, as the other e2e tests run it (KVM asserts on our CI hosts). */
const GUESTFS_ENV = {...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'}

interface StageRecord {
  id: string
  phase: string
  status: string
}

/**
 * The plugin author's path, end to end: examples/plugin-example is packed with npm (its prepack compiles
 * it), installed with `hyper2kvm plugins install file:….tgz` into a fresh HOME and XDG directories (where
 * `import 'hyper2kvm'` would not resolve: it runs on the API the host hands its hook), and a conversion of
 * the cached Debian guest (built by the test-guests fixture) runs its fixer; the record it writes is read back
 * from the output disk. With --no-fix the host does not run it.
 */
describe('e2e: a third-party plugin installed with `plugins install` fixes a real guest', function () {
  this.timeout(20 * 60_000)
  const cache = GUEST_CACHE
  const guest = guestPath('debian12-vmware')
  let dir: string
  let cleanup: () => void
  let env: NodeJS.ProcessEnv

  before(async function () {
    this.timeout(20 * 60_000)
    ;({cleanup, dir} = makeTempDir('h2k-e2e-plugin-'))
    env = {HOME: join(dir, 'home'), XDG_CACHE_HOME: join(dir, 'cache'), XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data')}
    for (const home of Object.values(env)) mkdirSync(home!, {recursive: true})
    execFileSync('npm', ['pack', '--pack-destination', dir], {cwd: EXAMPLE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))
    assert.equal(tarball, 'hyper2kvm-plugin-migration-marker-0.1.0.tgz')
    const installed = await runCli(['plugins', 'install', `file:${join(dir, tarball)}`], {env})
    assert.equal(installed.code, 0, installed.stderr)
  })
  after(() => cleanup?.())

  it('`plugins --json` lists it as a user plugin contributing its fixer, without errors', async () => {
    const result = await runCli(['plugins', '--json'], {env})
    assert.equal(result.code, 0, result.stderr)
    const plugin = result.json.plugins.find((p: {name: string}) => p.name === 'hyper2kvm-plugin-migration-marker')
    assert.ok(plugin, result.stdout)
    assert.equal(plugin.type, 'user')
    assert.deepEqual(plugin.errors, [])
    assert.deepEqual(plugin.stages.map((s: {id: string}) => s.id), [STAGE])
    assert.ok(readdirSync(join(env.XDG_DATA_HOME!, 'hyper2kvm', 'node_modules')).includes('hyper2kvm-plugin-migration-marker'), 'installed under the fresh data dir')
  })

  it('a conversion runs it after the stock fixers; its record is in the report and in the output disk', async () => {
    const out = join(dir, 'out')
    const started = Date.now()
    const result = await runCli(['convert', guest, '--output-dir', out, '--accel', 'tcg', '--stage-option', `${STAGE}.note=e2e-run`, '--json'], {env})
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
    const json = result.json
    const fixers = (json.stages as StageRecord[]).filter((s) => s.phase === 'fix')
    const ran = fixers.filter((s) => s.status === 'ok').map((s) => s.id)
    assert.equal(ran.at(-1), STAGE, `the marker runs after fstab, grub and initramfs: ${ran.join(', ')}`)
    for (const stock of ['fixer:fstab', 'fixer:grub', 'fixer:initramfs']) assert.ok(ran.includes(stock), ran.join(', '))

    const change = json.changes.find((c: {path: string}) => c.path === RECORD)
    assert.ok(change, JSON.stringify(json.changes.map((c: {path: string}) => c.path)))
    assert.equal(change.stage, STAGE)
    assert.equal(change.before, null)
    assert.match(change.after, /^source=debian12-vmware\.raw$/m)
    assert.match(change.after, /^source_format=raw$/m)
    assert.match(change.after, /^note=e2e-run$/m, 'the --stage-option reached the plugin as ctx.options')
    assert.match(change.after, new RegExp(`^hyper2kvm_version=${HOST_VERSION.replaceAll('.', '\\.')}$`, 'm'))
    const migratedAt = Date.parse(/^migrated_at=(.+)$/m.exec(change.after)![1]!)
    assert.ok(migratedAt >= started - 1000 && migratedAt <= Date.now(), `migrated_at within the run: ${change.after}`)
    assert.deepEqual(JSON.parse(readFileSync(json.report, 'utf8')).changes.find((c: {path: string}) => c.path === RECORD), change)

    const inDisk = execFileSync('virt-cat', ['--format=qcow2', '-a', json.outputs[0].path, RECORD], {encoding: 'utf8', env: GUESTFS_ENV})
    assert.equal(inDisk, change.after)
  })

  it('--no-fix: the host does not run it, and the output has no record', async () => {
    const out = join(dir, 'out-no-fix')
    const result = await runCli(['convert', guest, '--output-dir', out, '--no-fix', '--json'], {env})
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
    const json = result.json
    const marker = (json.stages as StageRecord[]).find((s) => s.id === STAGE)
    assert.equal(marker?.phase, 'fix', JSON.stringify(json.stages))
    assert.equal(marker?.status, 'skipped')
    assert.equal(json.changes.length, 0)
    const exists = execFileSync('guestfish', ['--ro', '--format=qcow2', '-a', json.outputs[0].path, '-i', 'exists', RECORD], {encoding: 'utf8', env: GUESTFS_ENV})
    assert.equal(exists.trim(), 'false')
  })
})
