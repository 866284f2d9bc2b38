import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

/**
 * `npm pack` (prepack) builds from scratch: tsc -b never deletes the output of a source that is gone, so a
 * renamed or removed command's compiled file stayed in dist/commands, where the manifest listed it and the
 * tarball shipped it (a command that is not in the source). Planted here as dist/commands/zz-stale-ghost.js.
 */
describe('prepack: the package is built from the source as it is, nothing left over', function () {
  this.timeout(300_000)
  const ghost = join(REPO, 'dist', 'commands', 'zz-stale-ghost.js')

  it('a compiled command without a source is neither in oclif.manifest.json nor in dist after prepack', () => {
    copyFileSync(join(REPO, 'dist', 'commands', 'validate.js'), ghost)
    execFileSync('npm', ['run', 'prepack', '--silent'], {cwd: REPO, stdio: ['ignore', 'ignore', 'pipe']})
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    assert.equal('zz-stale-ghost' in manifest.commands, false, 'the manifest lists a command that has no source')
    assert.equal(existsSync(ghost), false, 'the stale file would be packed')
    assert.ok('convert' in manifest.commands)
  })
})
