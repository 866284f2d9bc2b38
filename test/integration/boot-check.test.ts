import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import type {Accel} from '../../src/boot/boot-args.js'
import {bootCheck} from '../../src/boot/boot-check.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {chooseAccel} from '../../src/guest/accel.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {guestPath} from '../helpers/test-guests.js'

/** Built before any suite by the test-guests fixture: Debian 12, root=/dev/sda1, no virtio drivers in its initramfs. */
const GUEST = guestPath('debian12-vmware')

/** Size and mtime: a boot check in snapshot mode must leave both alone. */
function fingerprint(path: string): {size: number; mtimeMs: number} {
  const {mtimeMs, size} = statSync(path)
  return {mtimeMs, size}
}

/** qemu processes still running with this serial log on their command line (there must be none after a check). */
function qemuUsing(serialLog: string): string {
  try {
    return execFileSync('pgrep', ['-af', serialLog], {encoding: 'utf8'}).trim()
  } catch {
    return '' // pgrep exits 1 when nothing matches
  }
}

describe('boot check and accelerator choice (real qemu)', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  /** What chooseAccel found on this host; the boots use it (TCG here: /dev/kvm exists but hangs guests). */
  let accel: Accel = 'tcg'
  let guestBefore: {size: number; mtimeMs: number} | undefined

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-boot-'))
    guestBefore = fingerprint(GUEST)
  })
  after(() => cleanup())

  it('chooseAccel(auto) probes once, gives a reason, and answers from its cache the second time', async () => {
    const cacheDir = join(dir, 'cache')
    const first = await chooseAccel({cacheDir, preference: 'auto'})
    assert.ok(first.reason.length > 10, first.reason)
    if (existsSync('/dev/kvm')) assert.equal(first.probed, true)
    // H2K_EXPECT_ACCEL pins the verdict on a known host (tcg on the Firecracker CI box, where KVM hangs guests).
    if (process.env.H2K_EXPECT_ACCEL) assert.equal(first.accel, process.env.H2K_EXPECT_ACCEL, first.reason)
    if (first.accel === 'tcg' && existsSync('/dev/kvm')) assert.match(first.reason, /KVM|kvm/)
    accel = first.accel

    const started = performance.now()
    const second = await chooseAccel({cacheDir, preference: 'auto'})
    const ms = performance.now() - started
    assert.equal(second.accel, first.accel)
    if (existsSync('/dev/kvm')) {
      assert.equal(second.probed, false)
      assert.match(second.reason, /cached verdict/)
      assert.ok(existsSync(join(cacheDir, 'accel.json')))
    }
    assert.ok(ms < 2000, `cached answer took ${ms} ms`)
  })

  it('fails fast with initramfs-shell when the unconverted guest boots on virtio', async () => {
    const serialLog = join(dir, 'virtio.serial.log')
    const result = await bootCheck({accel, disks: [{format: 'raw', path: GUEST}], firmware: 'bios', serialLog, timeoutSeconds: 150})
    assert.equal(result.passed, false)
    assert.equal(result.reason, 'initramfs-shell', result.serialTail.join('\n'))
    assert.match(result.matchedLine ?? '', /ALERT! {2}\/dev\/sda1 does not exist/)
    assert.ok(result.serialTail.some((line) => line.startsWith('ALERT!')), result.serialTail.join('\n'))
    assert.ok(result.serialTail.length <= 30)
    // The initramfs itself waits ~30 s for the root device; anything near the timeout means we did not fail fast.
    assert.ok(result.seconds < 120, `took ${result.seconds} s`)
    assert.ok(result.command.some((arg) => arg.includes('snapshot=on')))
    // The hardware the libvirt domain describes: q35 for BIOS too, a virtio NIC on the restricted user network.
    assert.equal(result.machine, 'q35')
    assert.deepEqual(result.command.slice(result.command.indexOf('-machine'), result.command.indexOf('-machine') + 2), ['-machine', 'q35'])
    assert.ok(result.command.includes('user,id=net0,restrict=on') && result.command.includes('virtio-net-pci,netdev=net0'), result.command.join(' '))
    assert.equal(qemuUsing(serialLog), '')
  })

  it('passes on SATA through a qcow2 overlay: the source itself boots to a login prompt', async () => {
    const overlay = join(dir, 'guest-overlay.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', GUEST, '-F', 'raw', overlay])
    const overlayBefore = fingerprint(overlay)
    const progress: number[] = []
    const serialLog = join(dir, 'sata.serial.log')
    const result = await bootCheck({
      accel,
      bus: 'sata',
      // The overlay opens its backing file by itself: the sandbox shows qemu only the files it is told about.
      disks: [{files: [GUEST], format: 'qcow2', path: overlay}],
      firmware: 'bios',
      // The MAC a domain keeps (--keep-macs): qemu must accept it on the NIC, and the guest still boots.
      nic: {mac: '00:50:56:ab:cd:01'},
      onProgress: (seconds) => progress.push(seconds),
      serialLog,
      timeoutSeconds: 120,
    })
    assert.equal(result.passed, true, `${result.reason}\n${result.serialTail.join('\n')}`)
    assert.equal(result.reason, 'login-prompt')
    assert.match(result.matchedLine ?? '', /^h2k-guest login:/)
    assert.ok(result.seconds < 120)
    assert.ok(progress.length > 3 && progress.every((s, i) => i === 0 || s > (progress[i - 1] ?? -1)), `progress: ${progress.join(',')}`)
    assert.ok(result.command.includes('virtio-net-pci,netdev=net0,mac=00:50:56:ab:cd:01'), result.command.join(' '))
    assert.deepEqual(fingerprint(overlay), overlayBefore, 'snapshot mode must not write the overlay either')
    assert.equal(qemuUsing(serialLog), '')
  })

  it('fails fast with no-boot-device when UEFI firmware meets the BIOS-only guest (OVMF pflash + VARS copy work)', async () => {
    const result = await bootCheck({accel, disks: [{format: 'raw', path: GUEST}], firmware: 'efi', serialLog: join(dir, 'efi.serial.log'), timeoutSeconds: 90})
    assert.equal(result.passed, false)
    assert.equal(result.reason, 'no-boot-device', result.serialTail.join('\n'))
    assert.equal(result.machine, 'q35')
    assert.ok(result.command.some((arg) => arg.startsWith('if=pflash')))
  })

  it('stops qemu when cancelled, and reports H2K_CANCELLED', async () => {
    const serialLog = join(dir, 'cancel.serial.log')
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 2000)
    const started = performance.now()
    await assert.rejects(
      bootCheck({accel, disks: [{format: 'raw', path: GUEST}], firmware: 'bios', serialLog, signal: controller.signal, timeoutSeconds: 120}),
      (error: H2KError) => error.code === 'H2K_CANCELLED',
    )
    assert.ok(performance.now() - started < 10_000)
    assert.equal(qemuUsing(serialLog), '')
  })

  it('reports a missing qemu as H2K_TOOL_MISSING and a missing disk as H2K_INPUT_NOT_FOUND', async () => {
    const disk = join(dir, 'tiny.raw')
    writeFileSync(disk, Buffer.alloc(1024 * 1024))
    const path = process.env.PATH
    process.env.PATH = join(dir, 'empty-path')
    try {
      await assert.rejects(
        bootCheck({accel: 'tcg', disks: [{format: 'raw', path: disk}], firmware: 'bios', serialLog: join(dir, 'none.log'), timeoutSeconds: 5}),
        (error: H2KError) => error.code === 'H2K_TOOL_MISSING',
      )
    } finally {
      process.env.PATH = path
    }
    await assert.rejects(
      bootCheck({accel: 'tcg', disks: [{format: 'raw', path: join(dir, 'absent.raw')}], firmware: 'bios', serialLog: join(dir, 'none.log'), timeoutSeconds: 5}),
      (error: H2KError) => error.code === 'H2K_INPUT_NOT_FOUND',
    )
  })

  it('left the cached guest image untouched (size and mtime)', () => {
    assert.deepEqual(fingerprint(GUEST), guestBefore)
  })
})
