import {H2KError, isUnicastMac} from '@hyper2kvm/plugin-api'

export const QEMU_SYSTEM = 'qemu-system-x86_64'

export type Accel = 'kvm' | 'tcg'
export type Firmware = 'bios' | 'efi'
/** virtio is what a converted guest must boot on; sata only proves that the source boots at all. */
export type BootBus = 'virtio' | 'sata'
/** q35 (bootCheck's default for both firmwares, as the libvirt domain has it) or i440FX when asked for. */
export type MachineType = 'pc' | 'q35'

export interface BootDisk {
  path: string
  /** qemu format driver, always stated so qemu never probes it (raw, qcow2, vmdk, ...). */
  format: string
  /** A block device is opened with `host_device` instead of `file`. */
  blockDevice?: boolean
}

/** OVMF as split code + variable store (pflash), or a combined image loaded with -bios. */
export type OvmfImages = {code: string; vars: string} | {combined: string}

export interface BootArgsInput {
  /** Boot disk first. */
  disks: readonly BootDisk[]
  firmware: Firmware
  /** Required for efi: `vars` must be a private, writable copy (the guest writes boot entries to it). */
  ovmf?: OvmfImages
  accel: Accel
  bus: BootBus
  machine: MachineType
  memoryMiB: number
  cpus: number
  serialLog: string
  /** A virtio-net NIC on qemu's user network (restricted), with this MAC when given; false: no NIC. */
  nic: {mac?: string} | false
}

/** The AHCI controller has six ports; more SATA disks would need a second controller. */
const AHCI_PORTS = 6

/** A value inside a qemu `-drive`/`-device`/`-chardev` option list: a literal comma is written as ",,". */
export function qemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,')
}

function checkMac(mac: string): string {
  // The MAC lands inside -device's option list: nothing but a MAC may get there.
  if (!isUnicastMac(mac)) throw new H2KError('H2K_INTERNAL', 'Invalid MAC address for a boot check NIC.')
  return mac
}

/**
 * restrict=on: the guest gets a NIC (so network units behave as on a real host, and it configures its
 * address from slirp's DHCP) but cannot reach anything outside.
 */
function nicArgs(nic: BootArgsInput['nic']): string[] {
  if (nic === false) return []
  return ['-netdev', 'user,id=net0,restrict=on', '-device', `virtio-net-pci,netdev=net0${nic.mac === undefined ? '' : `,mac=${checkMac(nic.mac)}`}`]
}

function checkFormat(format: string): string {
  // The format lands inside an option list: anything but a plain driver name could smuggle in options.
  if (!/^[a-z0-9]+$/.test(format)) throw new H2KError('H2K_INTERNAL', `Invalid qemu format name for a boot check: ${JSON.stringify(format)}.`)
  return format
}

function diskArgs(disk: BootDisk, index: number, bus: BootBus): string[] {
  const id = `disk${index}`
  // file.driver/file.filename instead of file=: a path that starts with "json:" or "nbd:" stays a path.
  // snapshot=on: every guest write goes to a throwaway overlay, so the image under test is never modified;
  // cache=unsafe because flushing that overlay is wasted time.
  const drive = [
    `file.driver=${disk.blockDevice ? 'host_device' : 'file'}`,
    `file.filename=${qemuOptionValue(disk.path)}`,
    `format=${checkFormat(disk.format)}`,
    'if=none',
    `id=${id}`,
    'snapshot=on',
    'cache=unsafe',
  ].join(',')
  const boot = index === 0 ? ',bootindex=1' : ''
  const device = bus === 'virtio' ? `virtio-blk-pci,drive=${id}${boot}` : `ide-hd,drive=${id},bus=ahci0.${index}${boot}`
  return ['-drive', drive, '-device', device]
}

function firmwareArgs(input: BootArgsInput): string[] {
  if (input.firmware === 'bios') return []
  if (!input.ovmf) throw new H2KError('H2K_INTERNAL', 'A UEFI boot check needs OVMF firmware images.')
  if ('combined' in input.ovmf) return ['-bios', input.ovmf.combined]
  return [
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${qemuOptionValue(input.ovmf.code)}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${qemuOptionValue(input.ovmf.vars)}`,
  ]
}

/**
 * The qemu-system-x86_64 argv (without the program name) for a headless boot check: serial console to a
 * file, no monitor, no display, guest reboot turned into a qemu exit, every disk in snapshot mode.
 */
export function bootCheckArgs(input: BootArgsInput): string[] {
  if (input.disks.length === 0) throw new H2KError('H2K_INTERNAL', 'A boot check needs at least one disk.')
  if (input.bus === 'sata' && input.disks.length > AHCI_PORTS) {
    throw new H2KError('H2K_INTERNAL', `A SATA boot check supports at most ${AHCI_PORTS} disks, got ${input.disks.length}.`)
  }
  // -cpu host under KVM and -cpu max under TCG: the default qemu64 model lacks x86-64-v2 features that
  // current distributions (RHEL 9 and later) require, so such a guest would fail for a reason unrelated to us.
  const cpu = input.accel === 'kvm' ? 'host' : 'max'
  return [
    '-accel',
    input.accel,
    '-machine',
    input.machine,
    '-cpu',
    cpu,
    '-m',
    String(input.memoryMiB),
    '-smp',
    String(input.cpus),
    '-display',
    'none',
    '-monitor',
    'none',
    '-no-reboot',
    '-chardev',
    `file,id=serial0,path=${qemuOptionValue(input.serialLog)}`,
    '-serial',
    'chardev:serial0',
    ...firmwareArgs(input),
    ...(input.bus === 'sata' ? ['-device', 'ahci,id=ahci0'] : []),
    ...input.disks.flatMap((disk, index) => diskArgs(disk, index, input.bus)),
    ...nicArgs(input.nic),
  ]
}
