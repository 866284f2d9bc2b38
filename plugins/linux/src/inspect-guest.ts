import {type FstabEntry, type GuestSession, type Inspection, type InspectionRisk} from '@hyper2kvm/plugin-api'

import {noBootloaderRisk} from './bare-root.js'
import {factsOrRisk} from './facts-or-risk.js'
import {type GuestFacts, gatherFacts, lines, parseHash} from './guest-facts.js'
import {addNetwork} from './inspect-network.js'
import {isUnstableDevice} from './transforms/index.js'
import {inspectVmwareTools} from './vmware-tools-facts.js'

const ESP_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'
const PSEUDO = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'devtmpfs', 'none', 'swap', 'securityfs', 'cgroup', 'cgroup2', 'debugfs', 'mqueue', 'hugetlbfs', 'efivarfs'])

async function optional(session: GuestSession, command: string, ...args: string[]): Promise<string | undefined> {
  try {
    const value = (await session.call(command, ...args)).trim()
    return value === '' || value === 'unknown' ? undefined : value
  } catch {
    return undefined
  }
}

/**
 * Deterministic root choice: libguestfs lists the roots it found; prefer Linux roots, then those with
 * more mountpoints (a real system rather than a rescue partition), then device name order.
 */
async function chooseRoot(session: GuestSession): Promise<{root?: string; why: string}> {
  const roots = lines(await session.call('inspect-os'))
  if (roots.length === 0) return {why: 'libguestfs found no operating system on the disks'}
  if (roots.length === 1) return {root: roots[0], why: `the only operating system found (${roots[0]})`}
  const scored = await Promise.all(
    roots.map(async (root) => ({
      linux: (await optional(session, 'inspect-get-type', root)) === 'linux',
      mounts: Object.keys(parseHash(await session.call('inspect-get-mountpoints', root))).length,
      root,
    })),
  )
  scored.sort((a, b) => Number(b.linux) - Number(a.linux) || b.mounts - a.mounts || a.root.localeCompare(b.root))
  const chosen = scored[0]!
  return {root: chosen.root, why: `${roots.length} roots found (${roots.join(', ')}); chose ${chosen.root}: ${chosen.linux ? 'Linux, ' : ''}${chosen.mounts} mountpoint(s), then device order`}
}

/** Mount the root's filesystems, shortest mountpoint first; read-only for `inspect`. */
async function mountAll(session: GuestSession, mountpoints: Record<string, string>, readOnly: boolean): Promise<void> {
  for (const mountpoint of Object.keys(mountpoints).sort((a, b) => a.length - b.length || a.localeCompare(b))) {
    const device = mountpoints[mountpoint]!
    try {
      await session.call(readOnly ? 'mount-ro' : 'mount', device, mountpoint)
    } catch (error) {
      if (mountpoint === '/') throw error
    }
  }
}

/** Whether `partition` (e.g. /dev/sda1) is a partition of `device` (/dev/sda), not of /dev/sdaa. */
function isPartitionOf(partition: string, device: string): boolean {
  return partition.startsWith(device) && /^p?\d+$/.test(partition.slice(device.length))
}

async function detectFirmware(session: GuestSession, devices: readonly string[], partitions: readonly string[]): Promise<'bios' | 'efi'> {
  for (const device of devices) {
    // A device without partitions (a bare filesystem, a blank disk) has no table to ask about, and a failed
    // command ends the guestfish server: part-get-parttype is only asked of partitioned devices.
    if (!partitions.some((partition) => isPartitionOf(partition, device))) continue
    if ((await optional(session, 'part-get-parttype', device)) !== 'gpt') continue
    for (const partition of lines(await session.call('part-list', device)).filter((l) => l.startsWith('part_num:')).map((l) => l.split(': ')[1]!)) {
      if ((await optional(session, 'part-get-gpt-type', device, partition))?.toUpperCase() === ESP_GUID) return 'efi'
    }
  }
  return 'bios'
}

function parseFstab(text: string | null): FstabEntry[] {
  if (!text) return []
  const entries: FstabEntry[] = []
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const [device, mountpoint, fstype, options] = line.split(/\s+/)
    if (!device || !mountpoint || !fstype) continue
    const pseudo = PSEUDO.has(fstype) && fstype !== 'swap'
    const bind = (options ?? '').split(',').includes('bind')
    entries.push({device, fstype, line: index + 1, mountpoint, unstable: !pseudo && !bind && isUnstableDevice(device, 'stabilize-all')})
  }
  return entries
}

function bootloaderOf(facts: GuestFacts): {bootloader?: string; configs: string[]} {
  const has = (f: string) => facts.files.includes(f)
  const configs = facts.files.filter((f) => /grub\.cfg$|menu\.lst$|grub\.conf$|extlinux\.conf$|loader\/entries\//.test(f))
  const bls = facts.files.some((f) => f.startsWith('/boot/loader/entries/'))
  if (has('/boot/grub/grub.cfg') || has('/boot/grub2/grub.cfg') || facts.files.some((f) => f.startsWith('/boot/efi/EFI/') && f.endsWith('grub.cfg'))) {
    return {bootloader: bls ? 'grub2+bls' : 'grub2', configs}
  }
  if (has('/boot/grub/menu.lst') || has('/boot/grub/grub.conf')) return {bootloader: 'grub-legacy', configs}
  if (has('/boot/extlinux/extlinux.conf') || has('/extlinux.conf')) return {bootloader: 'extlinux', configs}
  return {bootloader: bls ? 'bls' : undefined, configs}
}

function initramfsToolOf(facts: GuestFacts): string | undefined {
  for (const [tool, name] of [
    ['update-initramfs', 'initramfs-tools'],
    ['dracut', 'dracut'],
    ['mkinitcpio', 'mkinitcpio'],
    ['mkinitfs', 'mkinitfs'],
    ['mkinitrd', 'mkinitrd'],
  ] as const) {
    if (facts.tools[tool]) return name
  }
  return undefined
}

/**
 * INSPECT: what the guest is and what stands between it and booting on virtio. Never interactive: every
 * choice is made by a rule and explained. Leaves the root's filesystems mounted for the fixers.
 */
export async function inspectGuest(session: GuestSession, options: {readOnly: boolean}): Promise<Inspection> {
  const {root, why} = await chooseRoot(session)
  const filesystems = parseHash(await session.call('list-filesystems'))
  const lvm = lines(await session.call('lvs')).length > 0
  const luks = Object.values(filesystems).includes('crypto_LUKS')
  const raid = lines(await session.call('list-md-devices')).length > 0
  const devices = lines(await session.call('list-devices'))
  const partitions = lines(await session.call('list-partitions'))
  const firmware = await detectFirmware(session, devices, partitions)
  // A root that is a whole disk (libguestfs sees /dev/sda itself as the filesystem) is a bare filesystem image.
  const bareRoot = root !== undefined && devices.includes(root)
  const base: Inspection = {firmware, fstab: [], kernels: [], luks, lvm, mountpoints: {}, os: 'unknown', partitioned: partitions.length > 0 && !bareRoot, raid, risks: [], rootChoice: why}
  if (!root) {
    base.risks.push({code: 'NO_OS_FOUND', message: 'No operating system was found: conversion only, no guest changes.'})
    return base
  }
  const os = (await optional(session, 'inspect-get-type', root)) ?? 'unknown'
  // A bare filesystem is one volume: libguestfs maps its fstab's /dev/xvda1 to a /dev/sda1 that does not exist
  // (and a failed mount ends the guestfish server); its other entries were separate volumes of the old instance.
  const mountpoints = bareRoot ? {'/': root} : parseHash(await session.call('inspect-get-mountpoints', root))
  const inspection: Inspection = {
    ...base,
    arch: await optional(session, 'inspect-get-arch', root),
    distro: await optional(session, 'inspect-get-distro', root),
    hostname: await optional(session, 'inspect-get-hostname', root),
    mountpoints,
    os,
    product: await optional(session, 'inspect-get-product-name', root),
    root,
    version: [await optional(session, 'inspect-get-major-version', root), await optional(session, 'inspect-get-minor-version', root)].filter((v) => v !== undefined).join('.') || undefined,
  }
  const bare = bareRoot ? {fstype: await optional(session, 'vfs-type', root), uuid: await optional(session, 'vfs-uuid', root)} : undefined
  if (os !== 'linux') {
    if (bare) inspection.risks.push(noBootloaderRisk({...bare, configs: [], fstab: []}))
    inspection.risks.push({code: 'UNSUPPORTED_OS', message: `${inspection.product ?? os} is not a Linux guest: conversion only, no guest changes (install virtio drivers in the guest before migrating).`})
    return inspection
  }
  // No fixer runs on a bare filesystem: read-only, the output stays the source's bytes (no mount count, no journal replay).
  await mountAll(session, mountpoints, options.readOnly || bareRoot)
  const facts = await gatherFacts(session)
  const {bootloader, configs} = bootloaderOf(facts)
  // In a bare filesystem a boot loader config (pv-grub's menu.lst) is not a boot loader: none is installed.
  inspection.bootloader = bare ? undefined : bootloader
  inspection.bootloaderConfig = configs
  inspection.initramfsTool = initramfsToolOf(facts)
  inspection.kernels = facts.kernels.map((k) => ({hasVirtio: k.virtio !== 'no', initramfs: k.initramfs, version: k.version, virtioInInitramfs: k.virtio === 'builtin' ? true : k.virtioInInitramfs}))
  inspection.fstab = parseFstab(await session.readFile('/etc/fstab'))
  if (bare) inspection.risks.push(noBootloaderRisk({...bare, configs, fstab: inspection.fstab}))
  inspection.risks.push(...risksOf(inspection, await rootArgs(session, configs)))
  await addVmwareTools(session, inspection)
  await addNetwork(session, inspection)
  return inspection
}

/** VMware Tools facts, or a risk saying they are unknown (factsOrRisk): then fixer:vmware-tools does not run. */
export async function addVmwareTools(session: GuestSession, inspection: Inspection): Promise<void> {
  await factsOrRisk(
    inspection,
    async () => {
      const tools = await inspectVmwareTools(session)
      inspection.vmwareTools = tools.facts
      inspection.risks.push(...tools.risks)
    },
    {code: 'VMWARE_TOOLS_UNKNOWN', message: 'VMware Tools could not be inspected (the appliance refused a request on the guest\'s files): fixer:vmware-tools does not run.'},
  )
}

/** root= values the boot loader passes, from its generated config. */
async function rootArgs(session: GuestSession, configs: string[]): Promise<string[]> {
  const found = new Set<string>()
  for (const config of configs) {
    const text = (await session.readFile(config)) ?? ''
    for (const match of text.matchAll(/\broot=(\S+)/g)) found.add(match[1]!.replace(/['"]/g, ''))
  }
  return [...found]
}

function risksOf(inspection: Inspection, roots: string[]): InspectionRisk[] {
  const risks: InspectionRisk[] = []
  const rootEntry = inspection.fstab.find((e) => e.mountpoint === '/')
  if (rootEntry?.unstable) risks.push({code: 'ROOT_ON_UNSTABLE_DEVICE', message: `fstab mounts / from ${rootEntry.device}, a name that changes on virtio (it becomes /dev/vda).`})
  const unstableOthers = inspection.fstab.filter((e) => e.unstable && e.mountpoint !== '/')
  if (unstableOthers.length > 0) risks.push({code: 'FSTAB_UNSTABLE_DEVICES', message: `fstab uses unstable device names: ${unstableOthers.map((e) => `${e.device} (${e.mountpoint})`).join(', ')}.`})
  const unstableRoots = roots.filter((r) => isUnstableDevice(r, 'stabilize-all'))
  if (unstableRoots.length > 0) risks.push({code: 'KERNEL_ROOT_UNSTABLE', message: `The boot loader passes root=${unstableRoots.join(', root=')}, which does not exist on virtio.`})
  if (inspection.kernels.length === 0) risks.push({code: 'NO_KERNEL', message: 'No installed kernel was found under /lib/modules.'})
  for (const kernel of inspection.kernels) {
    if (!kernel.hasVirtio) risks.push({code: 'KERNEL_WITHOUT_VIRTIO', message: `Kernel ${kernel.version} has no virtio_blk driver at all; it cannot boot on virtio.`})
    else if (kernel.virtioInInitramfs === false) risks.push({code: 'NO_VIRTIO_IN_INITRAMFS', message: `The initramfs of ${kernel.version} (${kernel.initramfs}) has no virtio_blk: the root disk will not be found on virtio.`})
  }
  if (!inspection.initramfsTool) risks.push({code: 'NO_INITRAMFS_TOOL', message: 'No initramfs tool (initramfs-tools, dracut, mkinitcpio, mkinitfs, mkinitrd) was found.'})
  if (inspection.luks) risks.push({code: 'LUKS_PRESENT', message: 'Encrypted (LUKS) volumes are present; hyper2kvm cannot open them, so files inside are not inspected or fixed.'})
  return risks
}
