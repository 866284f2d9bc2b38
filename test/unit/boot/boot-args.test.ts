import assert from 'node:assert/strict'

import {type BootArgsInput, bootCheckArgs, qemuOptionValue} from '../../../src/boot/boot-args.js'
import type {H2KError} from '@hyper2kvm/plugin-api'

const base: BootArgsInput = {
  accel: 'tcg',
  bus: 'virtio',
  cpus: 2,
  disks: [{format: 'qcow2', path: '/out/vm.qcow2'}],
  firmware: 'bios',
  machine: 'pc',
  memoryMiB: 2048,
  nic: {},
  serialLog: '/work/serial.log',
}

/** The values that follow every occurrence of `flag` in argv. */
function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((arg, index) => (arg === flag ? [argv[index + 1] ?? ''] : []))
}

describe('bootCheckArgs', () => {
  it('builds a headless BIOS boot on virtio with a serial console file', () => {
    const argv = bootCheckArgs(base)
    assert.deepEqual(valuesOf(argv, '-accel'), ['tcg'])
    assert.deepEqual(valuesOf(argv, '-machine'), ['pc'])
    assert.deepEqual(valuesOf(argv, '-cpu'), ['max'])
    assert.deepEqual(valuesOf(argv, '-m'), ['2048'])
    assert.deepEqual(valuesOf(argv, '-smp'), ['2'])
    assert.deepEqual(valuesOf(argv, '-display'), ['none'])
    assert.deepEqual(valuesOf(argv, '-monitor'), ['none'])
    assert.ok(argv.includes('-no-reboot'))
    assert.deepEqual(valuesOf(argv, '-chardev'), ['file,id=serial0,path=/work/serial.log'])
    assert.deepEqual(valuesOf(argv, '-serial'), ['chardev:serial0'])
    assert.deepEqual(valuesOf(argv, '-drive'), ['file.driver=file,file.filename=/out/vm.qcow2,format=qcow2,if=none,id=disk0,snapshot=on,cache=unsafe'])
    assert.deepEqual(valuesOf(argv, '-device'), ['virtio-blk-pci,drive=disk0,bootindex=1', 'virtio-net-pci,netdev=net0'])
    assert.deepEqual(valuesOf(argv, '-netdev'), ['user,id=net0,restrict=on'])
    assert.ok(!argv.includes('-bios') && !argv.some((arg) => arg.includes('pflash')), 'no UEFI firmware for a BIOS boot')
  })

  it('gives the NIC the MAC the libvirt domain keeps, on the restricted user network; none when the VM has no NIC', () => {
    const argv = bootCheckArgs({...base, machine: 'q35', nic: {mac: '00:50:56:ab:cd:ef'}})
    assert.deepEqual(valuesOf(argv, '-netdev'), ['user,id=net0,restrict=on'])
    assert.deepEqual(valuesOf(argv, '-device').filter((device) => device.startsWith('virtio-net')), ['virtio-net-pci,netdev=net0,mac=00:50:56:ab:cd:ef'])
    const none = bootCheckArgs({...base, nic: false})
    assert.deepEqual(valuesOf(none, '-netdev'), [])
    assert.ok(!valuesOf(none, '-device').some((device) => device.includes('net')), valuesOf(none, '-device').join(' '))
  })

  it('refuses a MAC that is not six lower-case hex pairs of a unicast address (it lands in an option list)', () => {
    for (const mac of ['00:50:56:ab:cd:ef,romfile=/etc/shadow', '00:50:56:AB:CD:EF', '01:00:5e:00:00:01', '00-50-56-ab-cd-ef', '00:50:56:ab:cd', '']) {
      assert.throws(() => bootCheckArgs({...base, nic: {mac}}), (error: H2KError) => error.code === 'H2K_INTERNAL' && !error.message.includes(mac || '\u0000'), mac)
    }
  })

  it('uses the host CPU under KVM', () => {
    const argv = bootCheckArgs({...base, accel: 'kvm', machine: 'q35'})
    assert.deepEqual(valuesOf(argv, '-accel'), ['kvm'])
    assert.deepEqual(valuesOf(argv, '-cpu'), ['host'])
    assert.deepEqual(valuesOf(argv, '-machine'), ['q35'])
  })

  it('loads split OVMF as read-only code plus the private variable store for UEFI', () => {
    const argv = bootCheckArgs({...base, firmware: 'efi', machine: 'q35', ovmf: {code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/tmp/job,1/OVMF_VARS.fd'}})
    const pflash = valuesOf(argv, '-drive').filter((drive) => drive.startsWith('if=pflash'))
    assert.deepEqual(pflash, [
      'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      'if=pflash,format=raw,unit=1,file=/tmp/job,,1/OVMF_VARS.fd',
    ])
    // The disks come after the firmware and stay in snapshot mode.
    assert.ok(argv.indexOf('-drive') < argv.findIndex((arg) => arg.startsWith('file.driver=')))
  })

  it('passes a combined OVMF image with -bios', () => {
    const argv = bootCheckArgs({...base, firmware: 'efi', ovmf: {combined: '/usr/share/ovmf/OVMF.fd'}})
    assert.deepEqual(valuesOf(argv, '-bios'), ['/usr/share/ovmf/OVMF.fd'])
  })

  it('refuses UEFI without firmware images', () => {
    assert.throws(() => bootCheckArgs({...base, firmware: 'efi'}), (error: H2KError) => error.code === 'H2K_INTERNAL')
  })

  it('doubles commas in disk, serial and firmware paths', () => {
    assert.equal(qemuOptionValue('/a,b,,c'), '/a,,b,,,,c')
    const argv = bootCheckArgs({...base, disks: [{format: 'raw', path: '/vms/web,db/disk,1.raw'}], serialLog: '/logs/a,b.log'})
    assert.deepEqual(valuesOf(argv, '-chardev'), ['file,id=serial0,path=/logs/a,,b.log'])
    assert.match(valuesOf(argv, '-drive')[0] ?? '', /^file\.driver=file,file\.filename=\/vms\/web,,db\/disk,,1\.raw,format=raw,/)
  })

  it('keeps a path that looks like a protocol a plain file name', () => {
    const drive = valuesOf(bootCheckArgs({...base, disks: [{format: 'raw', path: 'json:{"driver":"nbd"}'}]}), '-drive')[0] ?? ''
    assert.ok(drive.startsWith('file.driver=file,file.filename=json:{"driver":"nbd"},format=raw'), drive)
  })

  it('opens a block device with host_device', () => {
    const drive = valuesOf(bootCheckArgs({...base, disks: [{blockDevice: true, format: 'raw', path: '/dev/vg/vm'}]}), '-drive')[0] ?? ''
    assert.ok(drive.startsWith('file.driver=host_device,file.filename=/dev/vg/vm,'), drive)
  })

  it('attaches several disks in order, the first one bootable, all in snapshot mode', () => {
    const disks = [
      {format: 'qcow2', path: '/out/boot.qcow2'},
      {format: 'raw', path: '/out/data.raw'},
      {format: 'vmdk', path: '/out/logs.vmdk'},
    ]
    const argv = bootCheckArgs({...base, disks})
    const drives = valuesOf(argv, '-drive')
    assert.equal(drives.length, 3)
    drives.forEach((drive, index) => {
      assert.ok(drive.includes(`file.filename=${disks[index]?.path},format=${disks[index]?.format},if=none,id=disk${index},`), drive)
      assert.ok(drive.split(',').includes('snapshot=on'), `snapshot=on missing in ${drive}`)
    })
    assert.deepEqual(
      valuesOf(argv, '-device').filter((device) => device.startsWith('virtio-blk')),
      ['virtio-blk-pci,drive=disk0,bootindex=1', 'virtio-blk-pci,drive=disk1', 'virtio-blk-pci,drive=disk2'],
    )
  })

  it('puts SATA disks on one AHCI controller, one port each', () => {
    const argv = bootCheckArgs({...base, bus: 'sata', disks: [{format: 'raw', path: '/a.raw'}, {format: 'raw', path: '/b.raw'}]})
    assert.deepEqual(valuesOf(argv, '-device').slice(0, 3), [
      'ahci,id=ahci0',
      'ide-hd,drive=disk0,bus=ahci0.0,bootindex=1',
      'ide-hd,drive=disk1,bus=ahci0.1',
    ])
    const tooMany = Array.from({length: 7}, (_, index) => ({format: 'raw', path: `/d${index}.raw`}))
    assert.throws(() => bootCheckArgs({...base, bus: 'sata', disks: tooMany}), /at most 6 disks/)
  })

  it('refuses a format that could smuggle options into -drive, and an empty disk list', () => {
    for (const format of ['raw,file.locking=off', 'qcow2 ', '', 'RAW']) {
      assert.throws(() => bootCheckArgs({...base, disks: [{format, path: '/x'}]}), (error: H2KError) => error.code === 'H2K_INTERNAL', format)
    }
    assert.throws(() => bootCheckArgs({...base, disks: []}), /at least one disk/)
  })

  it('never lets a disk be written: every -drive of a disk has snapshot=on whatever the options', () => {
    for (const bus of ['virtio', 'sata'] as const) {
      for (const firmware of ['bios', 'efi'] as const) {
        const argv = bootCheckArgs({...base, bus, firmware, ovmf: {code: '/c.fd', vars: '/v.fd'}, disks: [{format: 'raw', path: '/a'}, {format: 'qcow2', path: '/b'}]})
        const diskDrives = valuesOf(argv, '-drive').filter((drive) => !drive.startsWith('if=pflash'))
        assert.equal(diskDrives.length, 2)
        for (const drive of diskDrives) assert.ok(drive.split(',').includes('snapshot=on'), drive)
      }
    }
  })
})
