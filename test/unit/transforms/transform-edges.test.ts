import assert from 'node:assert/strict'

import {tokenizeArgs} from '../../../plugins/linux/src/transforms/cmdline-tokens.js'
import {type DeviceResolver, type FstabMode, isUnstableDevice, stableSpec} from '../../../plugins/linux/src/transforms/device-resolver.js'
import {rewriteDeviceMap} from '../../../plugins/linux/src/transforms/device-map.js'
import {ensureInitramfsToolsModules} from '../../../plugins/linux/src/transforms/initramfs-tools-modules.js'
import {ensureMkinitcpioModules} from '../../../plugins/linux/src/transforms/mkinitcpio-conf.js'
import {mkinitfsFeaturesFor} from '../../../plugins/linux/src/transforms/mkinitfs-conf.js'
import {rewriteBlsEntry} from '../../../plugins/linux/src/transforms/rewrite-bls-entry.js'
import {rewriteDefaultGrub} from '../../../plugins/linux/src/transforms/rewrite-default-grub.js'
import {rewriteFstab} from '../../../plugins/linux/src/transforms/rewrite-fstab.js'
import {findUnstableRoots, rewriteGrubCfg} from '../../../plugins/linux/src/transforms/rewrite-grub-cfg.js'
import {GRUBENV_SIZE, rewriteGrubenv} from '../../../plugins/linux/src/transforms/rewrite-grubenv.js'
import {rewriteCmdlineArgs} from '../../../plugins/linux/src/transforms/rewrite-kernel-cmdline.js'

const UUID = 'e2b3c7a1-5f4d-4c1e-9a8b-3d2f1e0c9b7a'
const SWAP = '7c1d9e2f-3a4b-4c5d-8e6f-0a1b2c3d4e5f'
const known: DeviceResolver = (device) => ({'/dev/sda1': {uuid: UUID}, '/dev/sda5': {uuid: SWAP}})[device]
const unknown: DeviceResolver = () => undefined

describe('isUnstableDevice', () => {
  const table: Array<[string, FstabMode[]]> = [
    ['/dev/sda1', ['stabilize-all']],
    ['/dev/sdb', ['stabilize-all']],
    ['/dev/sdaa12', ['stabilize-all']],
    ['/dev/hdb2', ['stabilize-all']],
    ['/dev/xvda1', ['stabilize-all']],
    ['/dev/vdc3', ['stabilize-all']],
    ['/dev/nvme0n1p1', ['stabilize-all']],
    ['/dev/nvme1n1', ['stabilize-all']],
    ['/dev/cciss/c0d0p1', ['stabilize-all']],
    ['/dev/disk/by-id/scsi-36000c29a4f8e2b1d3c5e7f9a0b1c2d3e-part1', ['stabilize-all']],
    ['/dev/disk/by-id/ata-VMware_Virtual_IDE_Hard_Drive_00000000000000000001', ['stabilize-all']],
    ['/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part1', ['stabilize-all', 'bypath-only']],
    ['UUID=' + UUID, []],
    ['LABEL=root', []],
    ['PARTUUID=5d2c7e11-01', []],
    ['PARTLABEL=root', []],
    ['/dev/mapper/rhel-root', []],
    ['/dev/vg0/root', []],
    ['/dev/md0', []],
    ['/dev/md/root', []],
    ['/dev/dm-0', []],
    ['/dev/disk/by-uuid/' + UUID, []],
    ['/dev/disk/by-label/root', []],
    ['/dev/disk/by-partuuid/5d2c7e11-01', []],
    ['/dev/disk/by-id/dm-name-rhel-root', []],
    ['/dev/disk/by-id/md-uuid-1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d', []],
    ['/dev/sr0', []],
    ['/dev/fd0', []],
    ['nas:/export', []],
    ['//server/share', []],
    ['proc', []],
    ['tmpfs', []],
    ['none', []],
    ['/swapfile', []],
  ]
  for (const [device, unstableIn] of table) {
    it(`${device}: unstable in ${unstableIn.join(', ') || 'no mode'}`, () => {
      for (const mode of ['stabilize-all', 'bypath-only', 'noop'] as const) assert.equal(isUnstableDevice(device, mode), unstableIn.includes(mode), mode)
    })
  }
})

describe('stableSpec', () => {
  it('prefers UUID, then PARTUUID, then LABEL', () => {
    assert.equal(stableSpec({uuid: UUID, partuuid: 'p-01', label: 'root'}), `UUID=${UUID}`)
    assert.equal(stableSpec({partuuid: '5d2c7e11-01', label: 'root'}), 'PARTUUID=5d2c7e11-01')
    assert.equal(stableSpec({label: 'root'}), 'LABEL=root')
    assert.equal(stableSpec({}), undefined)
  })

  it('escapes blanks of a label for fstab and refuses them on a command line or in crypttab', () => {
    assert.equal(stableSpec({label: 'My Data\\x'}, 'fstab'), 'LABEL=My\\040Data\\134x')
    assert.equal(stableSpec({label: 'My Data'}, 'cmdline'), undefined)
    assert.equal(stableSpec({label: 'My Data'}, 'crypttab'), undefined)
    assert.equal(stableSpec({label: 'root$(reboot)'}, 'cmdline'), undefined)
  })

  it('ignores ids that are not ids (a confused resolver) and falls back', () => {
    assert.equal(stableSpec({uuid: 'a b', partuuid: '5d2c7e11-01'}), 'PARTUUID=5d2c7e11-01')
    assert.equal(stableSpec({uuid: '', label: 'line\nbreak'}), undefined)
  })
})

describe('kernel command line arguments', () => {
  it('rewrites root= and resume= in place, keeping order, blanks and quoting', () => {
    const args = ' "root=/dev/sda1"  ro resume="/dev/sda5" resume_offset=4096 quiet '
    const result = rewriteCmdlineArgs(args, known)
    assert.equal(result.text, ` "root=UUID=${UUID}"  ro resume="UUID=${SWAP}" resume_offset=4096 quiet `)
    assert.equal(result.edits.length, 1)
    assert.equal(result.edits[0]?.before, args)
  })

  it('leaves variables, stable names and look-alike keys alone', () => {
    const args = 'root=$rootdev rd.root=/dev/sda1 root=/dev/mapper/vg-root myroot=/dev/sda1 ${extra} $kernelopts'
    const result = rewriteCmdlineArgs(args, known)
    assert.equal(result.text, args)
    assert.deepEqual(result.edits, [])
  })

  it('uses LABEL only when nothing else is known, and only a label that needs no quoting', () => {
    assert.equal(rewriteCmdlineArgs('root=/dev/sda2', () => ({label: 'rootfs'})).text, 'root=LABEL=rootfs')
    const spaced = rewriteCmdlineArgs('root=/dev/sda2', () => ({label: 'root fs'}))
    assert.equal(spaced.text, 'root=/dev/sda2')
    assert.equal(spaced.warnings.length, 1)
  })

  it('warns and returns the very same text when the resolver knows nothing', () => {
    const args = 'root=/dev/sda1 ro'
    const result = rewriteCmdlineArgs(args, unknown)
    assert.equal(result.text, args)
    assert.deepEqual(result.edits, [])
    assert.match(result.warnings[0] ?? '', /root=\/dev\/sda1/)
  })

  it('tokenizes with quotes that hold blanks', () => {
    assert.deepEqual(
      tokenizeArgs('a  b="c d" \'e f\'').map((token) => token.text),
      ['a', 'b="c d"', "'e f'"],
    )
  })
})

describe('transform edge cases', () => {
  it('fstab: an unknown device is a warning and no change', () => {
    const text = '/dev/sdc1 /data ext4 defaults 0 2\n'
    const result = rewriteFstab(text, 'stabilize-all', unknown)
    assert.equal(result.text, text)
    assert.deepEqual(result.edits, [])
    assert.match(result.warnings[0] ?? '', /line 1: .*\/dev\/sdc1/)
  })

  it('fstab: an empty file stays empty', () => {
    assert.deepEqual(rewriteFstab('', 'stabilize-all', known), {text: '', edits: [], warnings: []})
  })

  it('default grub: a later GRUB_DISABLE_LINUX_UUID=false already wins, nothing to do', () => {
    const text = 'GRUB_DISABLE_LINUX_UUID=true\nGRUB_DISABLE_LINUX_UUID=false\n'
    const result = rewriteDefaultGrub(text, known)
    assert.equal(result.text, text)
    assert.equal(result.needsRegeneration, false)
  })

  it('default grub: a value that continues on the next line is reported, not guessed at', () => {
    const text = 'GRUB_CMDLINE_LINUX="root=/dev/sda1\n  quiet"\n'
    const result = rewriteDefaultGrub(text, known)
    assert.equal(result.text, text)
    assert.match(result.warnings[0] ?? '', /continues on the next line/)
  })

  it('default grub: export and a trailing comment survive', () => {
    const result = rewriteDefaultGrub('export GRUB_CMDLINE_LINUX="resume=/dev/sda5" # swap\n', known)
    assert.equal(result.text, `export GRUB_CMDLINE_LINUX="resume=UUID=${SWAP}" # swap\n`)
  })

  it('grubenv: refuses to grow past its fixed size', () => {
    const body = `# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n`
    const text = body + '#'.repeat(10)
    const result = rewriteGrubenv(text, known)
    assert.equal(result.text, text)
    assert.match(result.warnings[0] ?? '', /more bytes/)
  })

  it('grubenv: keeps exactly the original size', () => {
    const body = '# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n'
    const result = rewriteGrubenv(body + '#'.repeat(GRUBENV_SIZE - body.length), known)
    assert.equal(Buffer.byteLength(result.text), GRUBENV_SIZE)
    assert.ok(result.text.includes(`kernelopts=root=UUID=${UUID} ro\n#`))
  })

  it('grubenv: text without padding is not touched', () => {
    const result = rewriteGrubenv('kernelopts=root=/dev/sda1', known)
    assert.equal(result.text, 'kernelopts=root=/dev/sda1')
    assert.equal(result.warnings.length, 1)
  })

  it('grub.cfg: reports where unstable roots remain, by line', () => {
    const text = "set root='hd0,msdos1'\n\tlinux /vmlinuz root=/dev/sda1 ro\n\tlinux /vmlinuz root=UUID=x ro\n  linuxefi /vmlinuz root=/dev/sdb2\n"
    assert.deepEqual(findUnstableRoots(text), [
      {line: 2, device: '/dev/sda1'},
      {line: 4, device: '/dev/sdb2'},
    ])
    const result = rewriteGrubCfg(text, known)
    assert.deepEqual(findUnstableRoots(result.text), [{line: 4, device: '/dev/sdb2'}])
    assert.match(result.warnings[0] ?? '', /line 4/)
  })

  it('BLS: only the options line is read', () => {
    const text = 'title root=/dev/sda1\noptions root=/dev/sda1 ro\n'
    assert.equal(rewriteBlsEntry(text, known).text, `title root=/dev/sda1\noptions root=UUID=${UUID} ro\n`)
  })

  it('device.map: a file without mappings is kept', () => {
    assert.equal(rewriteDeviceMap('# nothing here\n').action, 'keep')
    assert.equal(rewriteDeviceMap('').action, 'keep')
  })

  it('initramfs-tools: an invalid module name is skipped with a warning; an empty file gets the block', () => {
    const result = ensureInitramfsToolsModules('', ['virtio_blk', 'evil; rm -rf /'])
    assert.equal(result.text, '# added by hyper2kvm for KVM virtio\nvirtio_blk\n')
    assert.equal(result.warnings.length, 1)
  })

  it('mkinitcpio: the last MODULES assignment is the one bash uses and the one extended', () => {
    const text = 'MODULES=(ext4)\nMODULES=(xfs)\n'
    assert.equal(ensureMkinitcpioModules(text, ['virtio_blk']).text, 'MODULES=(ext4)\nMODULES=(xfs virtio_blk)\n')
  })

  it('mkinitcpio: a bare or missing MODULES becomes an array', () => {
    assert.equal(ensureMkinitcpioModules('MODULES=\n', ['virtio_blk']).text, 'MODULES=(virtio_blk)\n')
    assert.equal(ensureMkinitcpioModules('HOOKS=(base)\n', ['virtio_blk']).text, 'HOOKS=(base)\n# added by hyper2kvm for KVM virtio\nMODULES=(virtio_blk)\n')
  })

  it('mkinitfs: maps drivers to the features that carry them', () => {
    assert.deepEqual(mkinitfsFeaturesFor(['virtio_blk', 'virtio-net', 'sd_mod', 'ahci', 'nvme', 'dm_mod']), ['virtio', 'scsi', 'ata', 'nvme'])
  })
})
