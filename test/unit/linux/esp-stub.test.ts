import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'

import {CHAINED_CONFIG_MAX_BYTES, checkEspStubs} from '../../../plugins/linux/src/esp-stub-check.js'
import {espStubTarget} from '../../../plugins/linux/src/transforms/esp-stub.js'
import {MemoryGuest, memoryJob} from '../../helpers/memory-guest.js'

// The grub.cfg stubs distributions' grub-install leaves on the ESP, byte for byte as they write them, and
// what each chains to. The grub fixer follows them (esp-stub-check.ts) so the config GRUB really reads is
// the one checked for a root= virtio can find.
const STUBS: Array<{name: string; text: string; target: ReturnType<typeof espStubTarget>}> = [
  {
    name: 'Debian 12 grub-install --uefi-secure-boot, separate /boot',
    target: {by: 'uuid', config: '/grub/grub.cfg', value: '0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50'},
    text: "search.fs_uuid 0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50 root hd0,gpt2 \nset prefix=($root)'/grub'\nconfigfile $prefix/grub.cfg\n",
  },
  {
    name: 'Ubuntu 22.04, /boot on the LVM root',
    target: {by: 'uuid', config: '/boot/grub/grub.cfg', value: '5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b'},
    text: "search.fs_uuid 5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b root lvmid/AbCdEf-1234/GhIjKl-5678 \nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
  },
  {
    name: 'RHEL 9 / Fedora: search --set=dev, prefix exported',
    target: {by: 'uuid', config: '/grub2/grub.cfg', value: '3a2b1c0d-9e8f-7a6b-5c4d-3e2f1a0b9c8d'},
    text: 'search --no-floppy --root-dev-only --fs-uuid --set=dev 3a2b1c0d-9e8f-7a6b-5c4d-3e2f1a0b9c8d\nset prefix=($dev)/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n',
  },
  {
    name: 'by label, bare path after search --set (GRUB root)',
    target: {by: 'label', config: '/boot/grub/grub.cfg', value: 'rootfs'},
    text: '# written by hand\nsearch --no-floppy --label --set rootfs\nconfigfile /boot/grub/grub.cfg\n',
  },
  {
    name: 'a configfile on another device than the searched one cannot be followed',
    target: undefined,
    text: 'search.fs_uuid 0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50 dev\nconfigfile (hd1,gpt2)/grub/grub.cfg\n',
  },
  {name: 'search by file is not an id', target: undefined, text: 'search --file --set=root /boot/grub/grub.cfg\nconfigfile /boot/grub/grub.cfg\n'},
  {name: 'no search at all', target: undefined, text: 'configfile (hd0,gpt2)/grub/grub.cfg\n'},
]

describe('ESP grub.cfg stubs: what they chain to', () => {
  for (const {name, target, text} of STUBS) {
    it(name, () => assert.deepEqual(espStubTarget(text), target))
  }
})

describe('ESP grub.cfg stubs: hostile ones', () => {
  it('a variable doubled line after line is given up on at 4 KiB, not grown to a RangeError', () => {
    const text = `search.fs_uuid 0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50 root\nset a=x\n${'set a=$a$a\n'.repeat(40)}configfile ($root)/$a\n`
    assert.ok(text.length < 2048, 'small enough to count as a stub')
    const started = Date.now()
    assert.equal(espStubTarget(text), undefined)
    assert.ok(Date.now() - started < 1000)
  })
})

const UUID = '0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50'
const STUB_PATH = '/boot/efi/EFI/debian/grub.cfg'
const CHAINED = 'menuentry Debian {\n  linux /vmlinuz root=/dev/sda2 ro\n}\n'

/** A UEFI guest with / on /dev/sda2 (the searched UUID) and the ESP on /dev/sda1; `plant` adds the hostile part. */
function stubGuest(plant: (guest: MemoryGuest) => void) {
  const guest = new MemoryGuest().plantFilesystem('/dev/sda2', {label: 'root', uuid: UUID}).plantFilesystem('/dev/sda1', {uuid: 'ABCD-1234'})
  plant(guest)
  const job = memoryJob(guest, {inspection: {firmware: 'efi', mountpoints: {'/': '/dev/sda2', '/boot/efi': '/dev/sda1'}}})
  const resolve = (device: string) => (device === '/dev/sda2' ? {uuid: UUID} : undefined)
  const run = (stub: string) => checkEspStubs(job.ctx, guest, resolve, new Map([[STUB_PATH, stub]]), new Set())
  return {guest, job, run}
}

const downloads = (guest: MemoryGuest) => guest.calls.filter((c) => c.startsWith('download '))

describe('ESP grub.cfg stubs: following one on the guest', () => {
  it('follows a stub to its config and makes its root= stable (the case everything else departs from)', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/boot/grub/grub.cfg', CHAINED))
    await run(`search.fs_uuid ${UUID} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n`)
    assert.match(guest.file('/boot/grub/grub.cfg') ?? '', new RegExp(`root=UUID=${UUID}`))
    assert.deepEqual(job.changes.map((c) => c.path), ['/boot/grub/grub.cfg'])
  })

  it('refuses a config path that climbs out with .. : nothing read, nothing written, a warning', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/etc/shadow', `root:x:0:0\n${CHAINED}`))
    await run(`search.fs_uuid ${UUID} root\nconfigfile ($root)/../../etc/shadow\n`)
    assert.deepEqual(downloads(guest), [])
    assert.deepEqual(guest.writes, [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['FIX_WARNING'])
  })

  it('refuses a config path with control characters', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/boot/grub/grub.cfg\u001b', CHAINED))
    await run(`search.fs_uuid ${UUID} root\nconfigfile ($root)/boot/grub/grub.cfg\u001b\n`)
    assert.deepEqual(downloads(guest), [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['FIX_WARNING'])
  })

  it('does not read a chained config that is a symbolic link (to a file it would rewrite in place)', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/etc/shadow', CHAINED).plantSymlink('/boot/grub/grub.cfg', '/etc/shadow'))
    await run(`search.fs_uuid ${UUID} root\nconfigfile ($root)/boot/grub/grub.cfg\n`)
    assert.deepEqual(downloads(guest), [])
    assert.equal(guest.file('/etc/shadow'), CHAINED)
    assert.deepEqual(job.warnings.map((w) => w.code), ['FIX_WARNING'])
  })

  it('does not read a chained config through a linked directory', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/etc/grub.cfg', CHAINED).plantSymlink('/boot/grub', '/etc'))
    await run(`search.fs_uuid ${UUID} root\nconfigfile ($root)/boot/grub/grub.cfg\n`)
    assert.deepEqual(downloads(guest), [])
    assert.deepEqual(guest.writes, [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['FIX_WARNING'])
  })

  it('does not read a chained config larger than the bound', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/boot/grub/grub.cfg', `${CHAINED}#${'x'.repeat(CHAINED_CONFIG_MAX_BYTES)}\n`))
    await run(`search.fs_uuid ${UUID} root\nconfigfile ($root)/boot/grub/grub.cfg\n`)
    assert.deepEqual(downloads(guest), [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['FIX_WARNING'])
  })

  it('finds the config of a btrfs root in subvolume @ (GRUB names it /@/boot/grub, the mounted guest /boot/grub)', async () => {
    const {guest, job, run} = stubGuest((g) => g.plantFile('/boot/grub/grub.cfg', CHAINED))
    await run(`search.fs_uuid ${UUID} root\nset prefix=($root)'/@/boot/grub'\nconfigfile $prefix/grub.cfg\n`)
    assert.match(guest.file('/boot/grub/grub.cfg') ?? '', new RegExp(`root=UUID=${UUID}`))
    assert.deepEqual(job.changes.map((c) => c.path), ['/boot/grub/grub.cfg'])
  })

  it('still fails when the chained config is in neither place', async () => {
    const {run} = stubGuest(() => {})
    await assert.rejects(run(`search.fs_uuid ${UUID} root\nset prefix=($root)'/@/boot/grub'\nconfigfile $prefix/grub.cfg\n`), (error: unknown) => error instanceof H2KError && error.code === 'H2K_FIX_FAILED')
  })

  it('never quotes the stub\'s values (a label with terminal escapes, the config path) in its error', async () => {
    const label = '\u001b]0;owned\u0007\u001b[2J'
    const {run} = stubGuest(() => {})
    await assert.rejects(run(`search --no-floppy --label --set=root '${label}'\nconfigfile /boot/grub/zz-secret.cfg\n`), (error: unknown) => {
      assert.ok(error instanceof H2KError && error.code === 'H2K_FIX_FAILED')
      const text = `${error.message} ${JSON.stringify(error.details)}`
      assert.ok(!text.includes('\u001b') && !text.includes('owned'), text)
      assert.match(error.message, /EFI\/debian\/grub\.cfg/)
      return true
    })
    const {run: runMissing} = stubGuest(() => {})
    await assert.rejects(runMissing(`search.fs_uuid ${UUID} root\nconfigfile ($root)/boot/grub/zz-secret.cfg\n`), (error: unknown) => {
      assert.ok(error instanceof H2KError)
      assert.ok(!error.message.includes('zz-secret'), error.message)
      return true
    })
  })
})
