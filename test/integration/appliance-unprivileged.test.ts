import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * An unprivileged user's appliance runs in a user + PID namespace (so it dies with us). libguestfs
 * building its appliance in there made a broken one (no device nodes), cached for every later launch:
 * the daemon of examples/systemd failed every job with "guestfish run failed". The appliance is now built
 * outside the namespace: a user with an empty appliance cache converts a disk the inspector opens.
 */
describe('libguestfs appliance of an unprivileged user', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  const user = 'h2k-appliance'
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-appliance-'))
    try {
      execFileSync('id', [user], {stdio: 'ignore'})
    } catch {
      execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user])
    }
  })
  after(() => cleanup())

  it('is built outside its namespace (a fresh cache), so the guest is inspected and converted', async () => {
    const uid = Number(execFileSync('id', ['-u', user], {encoding: 'utf8'}))
    const gid = Number(execFileSync('id', ['-g', user], {encoding: 'utf8'}))
    chmodSync(dir, 0o755)
    const disk = join(dir, 'fs.raw')
    execFileSync('truncate', ['-s', '64M', disk])
    execFileSync('mkfs.ext4', ['-q', '-F', disk])
    chmodSync(disk, 0o644)
    const out = join(dir, 'out')
    const cache = join(dir, 'cache')
    for (const d of [out, cache]) {
      mkdirSync(d)
      chownSync(d, uid, gid)
    }
    const result = await runCli(['convert', disk, '--output-dir', out, '--accel', 'tcg', '--json'], {
      as: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'],
      env: {HOME: dir, LIBGUESTFS_CACHEDIR: cache},
    })
    assert.equal(result.code, 0, result.stderr)
    const report = result.json as {stages: Array<{id: string; status: string}>; warnings: Array<{code: string}>}
    assert.ok(report.stages.some((s) => s.id === 'inspector:guest' && s.status === 'ok'), JSON.stringify(report.stages))
    assert.ok(!report.warnings.some((w) => w.code === 'GUEST_NOT_CONTAINED'), 'the appliance ran in its own namespace')
    assert.ok(existsSync(join(cache, `.guestfs-${uid}`, 'appliance.d', 'README.fixed')), 'the appliance was built outside the namespace')
  })
})
