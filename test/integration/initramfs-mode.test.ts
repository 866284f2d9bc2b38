import assert from 'node:assert/strict'
import {join} from 'node:path'

import {FAKE_KERNEL, makeFakeLinuxGuest} from '../helpers/fake-linux-guest.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const IMAGE = `/boot/initrd.img-${FAKE_KERNEL}`

/**
 * --initramfs-mode through the real CLI and appliance, on the small fake guest (no cpio, gzip, depmod or
 * modprobe in it: the append form cannot be used; its update-initramfs appends 20 bytes as a "rebuild").
 * auto falling back is covered by change-diffs-plan.test.ts; the real append form by initramfs-append.test.ts
 * (the script) and the e2e boots (every guest shape).
 */
describe('--initramfs-mode on a guest the append form cannot be used on', function () {
  this.timeout(900_000)
  let dir: string
  let cleanup: () => void
  let disk: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-initramfs-mode-'))
    disk = join(dir, 'guest.raw')
    makeFakeLinuxGuest(disk)
  })
  after(() => cleanup())

  it('append: the job fails with H2K_FIX_FAILED naming the reason, no output written', async () => {
    const result = await runCli(['convert', disk, '-o', join(dir, 'out-append'), '--accel', 'tcg', '--name', 'vm', '--initramfs-mode', 'append', '--json'])
    assert.notEqual(result.code, 0, result.stdout)
    assert.equal(result.json.error.code, 'H2K_FIX_FAILED', JSON.stringify(result.json.error))
    assert.match(result.json.error.message, new RegExp(`cannot be appended to the initramfs of ${FAKE_KERNEL.replaceAll('.', '\\.')}: the guest lacks cpio`))
    assert.equal((result.json.outputs ?? []).length, 0)
  })

  it('rebuild: the guest\'s tool, no append attempted, no fallback warning', async () => {
    const result = await runCli(['convert', disk, '-o', join(dir, 'out-rebuild'), '--accel', 'tcg', '--name', 'vm', '--initramfs-mode', 'rebuild', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const image = result.json.changes.find((c: {path: string}) => c.path === IMAGE)
    assert.match(image.reason, /^rebuilt by initramfs-tools .*\(method: rebuild\)$/)
    assert.ok(!result.json.warnings.some((w: {code: string}) => w.code === 'INITRAMFS_APPEND_FELL_BACK'), JSON.stringify(result.json.warnings))
  })

  it('refuses a mode it does not know before anything runs', async () => {
    const result = await runCli(['convert', disk, '-o', join(dir, 'out-bad'), '--initramfs-mode', 'concatenate'])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /initramfs-mode/)
  })
})
