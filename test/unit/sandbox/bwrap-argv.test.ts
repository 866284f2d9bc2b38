import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {bwrapArgv, resolveView} from '../../../src/sandbox/bwrap-argv.js'
import {specView} from '../../../src/sandbox/sandbox-view.js'
import {formatNode} from '@hyper2kvm/plugin-api'
import {makeTempDir} from '../../helpers/temp-dir.js'

/** The mounts of an argv as [option, source, dest] triples, in order. */
function mounts(argv: readonly string[]): string[][] {
  const out: string[][] = []
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--bind' || argv[i] === '--ro-bind') out.push([argv[i]!, argv[i + 1]!, argv[i + 2]!])
  return out
}

describe('bwrap argv: what a sandboxed qemu sees', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('binds exactly the files a spec names, read-only, at their real path and at the path the spec uses', () => {
    mkdirSync(join(dir, 'real'))
    writeFileSync(join(dir, 'real', 'disk.vmdk'), 'x')
    writeFileSync(join(dir, 'real', 'neighbour.raw'), 'secret')
    symlinkSync(join(dir, 'real'), join(dir, 'link'))
    const spec = formatNode('vmdk', join(dir, 'link', 'disk.vmdk'))
    const view = resolveView(specView([spec], [join(dir, 'real')]))
    const argv = bwrapArgv({argv: ['/usr/bin/qemu-img', 'info'], bwrap: '/usr/bin/bwrap', system: [{path: '/lib', symlink: 'usr/lib'}], view})
    assert.deepEqual(mounts(argv), [
      ['--ro-bind', '/usr', '/usr'],
      // The writable directory (shallower) first; the file inside it stays read-only on top.
      ['--bind', join(dir, 'real'), join(dir, 'real')],
      ['--ro-bind', join(dir, 'real', 'disk.vmdk'), join(dir, 'link', 'disk.vmdk')],
      ['--ro-bind', join(dir, 'real', 'disk.vmdk'), join(dir, 'real', 'disk.vmdk')],
    ])
    assert.ok(!argv.some((arg) => arg.includes('neighbour')))
    for (const flag of ['--unshare-all', '--die-with-parent', '--new-session', '--clearenv']) assert.ok(argv.includes(flag), flag)
    assert.deepEqual(argv.slice(argv.indexOf('--cap-drop'), argv.indexOf('--cap-drop') + 2), ['--cap-drop', 'ALL'])
    assert.deepEqual(argv.slice(argv.indexOf('--symlink'), argv.indexOf('--symlink') + 3), ['--symlink', 'usr/lib', '/lib'])
    assert.deepEqual(argv.slice(-3), ['--', '/usr/bin/qemu-img', 'info'])
  })

  it('leaves out paths that do not exist and read-only paths under /usr (every sandbox has /usr)', () => {
    const view = resolveView({readOnly: [join(dir, 'absent.raw'), '/usr/share/misc/magic'], readWrite: []})
    assert.deepEqual(view.binds, [])
  })

  it('runs in / unless the working directory is visible, and sets TMPDIR', () => {
    const view = resolveView({readOnly: [], readWrite: [dir], tmpDir: dir})
    const inside = bwrapArgv({argv: ['/usr/bin/true'], bwrap: 'bwrap', cwd: dir, system: [], view})
    assert.deepEqual(inside.slice(inside.indexOf('--chdir'), inside.indexOf('--chdir') + 2), ['--chdir', dir])
    assert.deepEqual(inside.slice(inside.indexOf('TMPDIR') - 1, inside.indexOf('TMPDIR') + 2), ['--setenv', 'TMPDIR', dir])
    const outside = bwrapArgv({argv: ['/usr/bin/true'], bwrap: 'bwrap', cwd: '/root', system: [], view})
    assert.deepEqual(outside.slice(outside.indexOf('--chdir'), outside.indexOf('--chdir') + 2), ['--chdir', '/'])
  })
})
