import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'

import {grubFixer} from '../../../plugins/linux/src/grub-fixer.js'
import {MemoryGuest, memoryJob} from '../../helpers/memory-guest.js'

const ROOT_UUID = 'dc720fa9-9998-4500-b2eb-da3271be890b'
const SWAP_UUID = '0f5e7a43-46c4-4a0e-9d6e-2b8c1f0d7a11'

/** What the e2e VMware-like guests carry: UUIDs disabled in the defaults, so grub.cfg says root=/dev/sda1. */
const DEFAULT_GRUB = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="console=ttyS0,115200 resume=/dev/sda2"\nGRUB_DISABLE_LINUX_UUID=true\n'
const grubCfg = (root: string) =>
  [
    "menuentry 'Debian GNU/Linux' {",
    `\tsearch --no-floppy --fs-uuid --set=root ${ROOT_UUID}`,
    `\tlinux\t/boot/vmlinuz-6.1.0-50-amd64 root=${root} ro console=ttyS0,115200 resume=/dev/sda2 `,
    '\tinitrd\t/boot/initrd.img-6.1.0-50-amd64',
    '}',
    '',
  ].join('\n')

function vmwareGuest(root: string): MemoryGuest {
  return new MemoryGuest()
    .plantFile('/etc/default/grub', DEFAULT_GRUB)
    .plantFile('/boot/grub/grub.cfg', grubCfg(root))
    .plantFilesystem('/dev/sda1', {uuid: ROOT_UUID})
    .plantFilesystem('/dev/sda2', {uuid: SWAP_UUID})
}

const inspection = {bootloader: 'grub2', bootloaderConfig: ['/boot/grub/grub.cfg'], fstab: [{device: '/dev/sda1', fstype: 'ext4', line: 1, mountpoint: '/', unstable: true}], mountpoints: {'/': '/dev/sda1'}}

describe('fixer:grub on an in-memory guest', () => {
  it('a changed /etc/default/grub: grub.cfg gets root=/resume= by UUID in place, and the guest\'s grub-mkconfig is not run', async () => {
    const guest = vmwareGuest('/dev/sda1')
    const {changes, ctx} = memoryJob(guest, {inspection})
    await grubFixer.run(ctx)
    assert.deepEqual(guest.calls.filter((c) => c.startsWith('sh ')), [], 'no guest shell (update-grub / grub-mkconfig)')
    assert.match(guest.file('/etc/default/grub')!, /^#GRUB_DISABLE_LINUX_UUID=true$/m)
    assert.match(guest.file('/etc/default/grub')!, new RegExp(`resume=UUID=${SWAP_UUID}`))
    const cfg = guest.file('/boot/grub/grub.cfg')!
    assert.match(cfg, new RegExp(`\\tlinux\\t/boot/vmlinuz-6\\.1\\.0-50-amd64 root=UUID=${ROOT_UUID} ro console=ttyS0,115200 resume=UUID=${SWAP_UUID} \\n`))
    // Only the kernel line changed: the rest of the file is the guest's own, byte for byte.
    assert.equal(cfg.replace(`root=UUID=${ROOT_UUID}`, 'root=/dev/sda1').replace(`resume=UUID=${SWAP_UUID}`, 'resume=/dev/sda2'), grubCfg('/dev/sda1'))
    const change = changes.find((c) => c.path === '/boot/grub/grub.cfg')
    assert.ok(change, 'grub.cfg is in the report')
    assert.match(change.reason ?? '', /rewritten in place/)
  })

  it('a root= that cannot be rewritten in place (no such device in the guest): the guest\'s own tool regenerates the config', async () => {
    const guest = vmwareGuest('/dev/sdc1')
    const {ctx} = memoryJob(guest, {inspection})
    // The memory guest has no shell: the attempt to regenerate is what this proves (recorded, then refused).
    await assert.rejects(grubFixer.run(ctx), (error: H2KError) => error.code === 'H2K_FIX_FAILED' && /Regenerating the GRUB config failed/.test(error.message))
    const shells = guest.calls.filter((c) => c.startsWith('sh '))
    assert.equal(shells.length, 1)
    assert.match(shells[0] ?? '', /update-grub/)
  })
})
