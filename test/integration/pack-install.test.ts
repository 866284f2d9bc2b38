import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, join} from 'node:path'

import {type Installed, REPO, freshHome, npmLsInstalled, packAndInstall, runInstalled} from '../helpers/installed-cli.js'
import {manifestFor, ovfText} from '../helpers/ovf-fixtures.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'

interface PackageJson {
  name: string
  version: string
  bin?: Record<string, string>
  exports?: Record<string, string | Record<string, string>>
  workspaces?: string[]
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  bundleDependencies?: string[]
}

const readJson = (path: string): PackageJson => JSON.parse(readFileSync(path, 'utf8')) as PackageJson
const root = readJson(join(REPO, 'package.json'))

/** The checkout's workspace packages (`"dir/*"` patterns), by name: what must travel inside the tarball. */
function workspacePackages(): Map<string, string> {
  const found = new Map<string, string>()
  for (const pattern of root.workspaces ?? []) {
    assert.match(pattern, /^[\w.-]+\/\*$/, `workspace pattern ${pattern}: this test expands only "dir/*"`)
    const parent = join(REPO, pattern.slice(0, -2))
    for (const entry of readdirSync(parent)) {
      const manifest = join(parent, entry, 'package.json')
      if (existsSync(manifest)) found.set(readJson(manifest).name, join(parent, entry))
    }
  }
  return found
}

/** The first-party plugins: every plugins/<x>/package.json. The installed CLI must list each of them. */
const firstPartyPlugins = readdirSync(join(REPO, 'plugins'))
  .filter((entry) => existsSync(join(REPO, 'plugins', entry, 'package.json')))
  .map((entry) => readJson(join(REPO, 'plugins', entry, 'package.json')).name)
  .sort()

/** Specs that only mean something inside this checkout: in a tarball they become dangling links. */
const LOCAL_SPEC = /^(file|link|workspace|portal):/

function localSpecs(manifest: PackageJson): string[] {
  return [manifest.dependencies, manifest.optionalDependencies, manifest.peerDependencies].flatMap((deps) =>
    Object.entries(deps ?? {})
      .filter(([, spec]) => LOCAL_SPEC.test(spec))
      .map(([name, spec]) => `${manifest.name}: ${name}@${spec}`),
  )
}

/**
 * What a user gets: `npm pack` → `npm install -g` of the tarball into an empty prefix → the installed
 * `hyper2kvm` (fresh HOME and XDG dirs) lists every first-party plugin and converts an OVA. This is the
 * round trip issue #11 asks CI to run; it used to fail (six dangling `file:plugins/*` links, no loaders).
 */
describe('the npm package: pack, install -g into an empty prefix, convert', function () {
  this.timeout(600_000)
  let dir: string
  let cleanup: () => void
  let installed: Installed
  let env: NodeJS.ProcessEnv
  let packedFiles: Set<string>

  before(function () {
    this.timeout(600_000)
    ;({cleanup, dir} = makeTempDir('h2k-pack-'))
    installed = packAndInstall(dir)
    env = freshHome(dir)
    packedFiles = new Set(installed.pack.files.map((file) => file.path))
  })
  after(() => cleanup?.())

  it('the tarball carries the CLI, its LICENSE and its bundled workspace packages, and nothing of the checkout', () => {
    for (const path of ['LICENSE', 'package.json', 'README.md', 'bin/run.js', 'bin/no-inspector-signal.js', 'dist/config-route.js']) {
      assert.ok(packedFiles.has(path), `${path} is in the tarball`)
    }
    if (existsSync(join(REPO, 'oclif.manifest.json'))) assert.ok(packedFiles.has('oclif.manifest.json'), 'the generated oclif.manifest.json is in the tarball')
    const strays = [...packedFiles].filter(
      (path) =>
        path === 'bin/dev.js' ||
        path.startsWith('scripts/') ||
        path.startsWith('src/') ||
        path.startsWith('test/') ||
        path.endsWith('.tsbuildinfo') ||
        // Our own source maps point at TypeScript sources that are not shipped.
        (/^(dist|node_modules\/@hyper2kvm\/[^/]+\/dist)\//.test(path) && path.endsWith('.map')),
    )
    assert.deepEqual(strays, [])

    // Every path the package.json points at is shipped (it used to export a dist/index.js that never existed).
    const targets = [...Object.values(root.bin ?? {}), ...Object.values(root.exports ?? {}).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target)))]
    for (const target of targets) assert.ok(packedFiles.has(target.replace(/^\.\//, '')), `${target} (from package.json) is in the tarball`)

    // Each workspace package the host depends on travels inside the tarball (bundleDependencies), built.
    const workspaces = workspacePackages()
    const dependedOn = [...workspaces.keys()].filter((name) => root.dependencies?.[name] !== undefined).sort()
    for (const plugin of firstPartyPlugins) assert.ok(dependedOn.includes(plugin), `the host depends on ${plugin}`)
    assert.deepEqual([...(root.bundleDependencies ?? [])].sort(), dependedOn, 'bundleDependencies = the workspace packages the host depends on')
    for (const name of dependedOn) {
      assert.ok(installed.pack.bundled.includes(name), `${name} is bundled`)
      const own = readJson(join(workspaces.get(name)!, 'package.json')) as PackageJson & {main?: string}
      assert.equal(root.dependencies![name], own.version, `${name} is depended on by its version (${own.version}), not by a path`)
      for (const path of ['package.json', ...(own.main ? [own.main.replace(/^\.\//, '')] : [])]) {
        assert.ok(packedFiles.has(`node_modules/${name}/${path}`), `node_modules/${name}/${path} is in the tarball`)
      }
    }
  })

  it('no dependency spec in the tarball points into the checkout, and no install script waits for approval', () => {
    const packedManifest = (path: string): PackageJson => JSON.parse(execFileSync('tar', ['-xzOf', installed.tarball, `package/${path}`], {encoding: 'utf8'})) as PackageJson
    const manifests = [packedManifest('package.json'), ...[...packedFiles].filter((path) => /^node_modules\/@hyper2kvm\/[^/]+\/package\.json$/.test(path)).map(packedManifest)]
    assert.ok(manifests.length > firstPartyPlugins.length, 'the host and every bundled @hyper2kvm package were read')
    assert.deepEqual(manifests.flatMap(localSpecs), [])
    // npm 11 asks users to approve a tarball's install scripts (`prepare` included, though it never runs there)
    // and fails the install under --strict-allow-scripts: ours has none to approve.
    const installScripts = manifests.flatMap((manifest) =>
      Object.keys((manifest as PackageJson & {scripts?: Record<string, string>}).scripts ?? {})
        .filter((script) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(script))
        .map((script) => `${manifest.name}: ${script}`),
    )
    assert.deepEqual(installScripts, [])
  })

  it('installs into the prefix as real directories with a consistent tree (npm ls -g --all)', () => {
    for (const name of root.bundleDependencies ?? []) {
      const path = join(installed.packageDir, 'node_modules', name)
      assert.ok(lstatSync(path).isDirectory(), `${path} is a directory, not a link into a checkout`)
      assert.ok(existsSync(join(path, 'package.json')), `${path}/package.json`)
    }
    const ls = npmLsInstalled(installed)
    assert.equal(ls.status, 0, `${ls.stdout}\n${ls.stderr}`)
    assert.doesNotMatch(ls.stdout, /invalid|missing|extraneous/)
  })

  it('`hyper2kvm plugins --json` lists every first-party plugin, none failed, and prints no error', () => {
    const result = runInstalled(installed, ['plugins', '--json'], {cwd: dir, env})
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.equal(result.stderr, '')
    const listed = (JSON.parse(result.stdout) as {plugins: {name: string; type: string; errors: unknown[]; stages: unknown[]}[]}).plugins
    for (const name of firstPartyPlugins) {
      const plugin = listed.find((p) => p.name === name)
      assert.ok(plugin, `${name} is listed`)
      assert.equal(plugin.type, 'core')
      assert.deepEqual(plugin.errors, [], `${name} loaded`)
      assert.ok(plugin.stages.length > 0, `${name} registered stages`)
    }
    assert.deepEqual(listed.filter((p) => p.errors.length > 0), [])
  })

  it('converts an OVA with the installed CLI (loader:ova, content identical to the source disk)', () => {
    const ova = join(dir, 'ova')
    mkdirSync(ova)
    const disk = makePatternedRaw(join(dir, 'disk1.raw'))
    convertFixture(disk, join(ova, 'web01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(ova, 'web01.ovf'), ovfText('web01', [{href: 'web01-disk1.vmdk', id: 'vmdisk1'}]))
    const members = ['web01.ovf', 'web01-disk1.vmdk']
    writeFileSync(join(ova, 'web01.mf'), manifestFor(ova, members, 'SHA256'))
    execFileSync('tar', ['-cf', 'web01.ova', '--format=ustar', ...members, 'web01.mf'], {cwd: ova})

    const out = join(dir, 'out')
    const result = runInstalled(installed, ['convert', join(ova, 'web01.ova'), '--no-fix', '--output-dir', out, '--json'], {cwd: dir, env})
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    const json = JSON.parse(result.stdout) as {status: string; input: {loader: string; plugin: string}; outputs: {path: string}[]}
    assert.equal(json.status, 'succeeded')
    assert.equal(json.input.loader, 'loader:ova')
    assert.equal(json.input.plugin, '@hyper2kvm/plugin-ovf')
    assert.deepEqual(json.outputs.map((o) => basename(o.path)), ['web01.qcow2'])
    assert.ok(sameContent(disk, 'raw', json.outputs[0]!.path, 'qcow2'), 'qemu-img compare: the output holds the source disk')
  })

  it('`-v` prints the version and `-h` the root help', () => {
    const version = runInstalled(installed, ['-v'], {cwd: dir, env})
    assert.equal(version.status, 0, version.stderr)
    assert.match(version.stdout, new RegExp(`^hyper2kvm/${root.version.replaceAll('.', '\\.')} `))
    const help = runInstalled(installed, ['-h'], {cwd: dir, env})
    assert.equal(help.status, 0, help.stderr)
    assert.match(help.stdout, /USAGE\n {2}\$ hyper2kvm \[COMMAND\]/)
    assert.match(help.stdout, /\n {2}convert +/)
  })

  it('`autocomplete bash` prints the setup and caches the completion under $XDG_CACHE_HOME', () => {
    const result = runInstalled(installed, ['autocomplete', 'bash'], {cwd: dir, env})
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout, /hyper2kvm autocomplete script bash/)
    assert.ok(existsSync(join(env.XDG_CACHE_HOME!, 'hyper2kvm', 'autocomplete', 'bash_setup')), 'bash_setup is cached under XDG_CACHE_HOME')
    assert.ok(existsSync(join(env.XDG_CACHE_HOME!, 'hyper2kvm', 'autocomplete', 'functions', 'bash')), 'the bash completion function is cached')
  })
})
