import type {Firmware, Inspection, JobSettings, JobWarning, Source} from '@hyper2kvm/plugin-api'
import {isUnicastMac} from '@hyper2kvm/plugin-api'
import {outputStem} from '../output/plan-outputs.js'

/**
 * The virtual hardware a converted VM gets: what `--emit libvirt` writes as a domain and what the boot test
 * (--verify-boot) boots, so the proof is of the VM the user will run. Every fact from the source (OVF) is
 * untrusted: it is used only when it passes the checks below, otherwise the default is used and a warning
 * says so without repeating the refused value.
 */
export interface DomainHardware {
  /** The domain name: the outputs' base name (already a safe file stem). */
  name: string
  /** The source's own VM name when it differs from `name` and is plain printable text. */
  title?: string
  cpus: number
  memoryMiB: number
  firmware: Firmware
  /** q35 for both firmwares: PCIe, what libvirt and virt-v2v give new guests, what secure-boot OVMF needs. */
  machine: 'q35'
  /** One virtio NIC per source NIC (one when the source states none); a MAC only with --keep-macs. */
  nics: Array<{mac?: string}>
  /** Windows keeps its clock in local time, everything else in UTC. */
  clock: 'utc' | 'localtime'
}

export const DEFAULT_CPUS = 2
export const DEFAULT_MEMORY_MIB = 2048
/** q35 without an IOMMU addresses 255 vCPUs (x2APIC IDs beyond need interrupt remapping). */
const MAX_CPUS = 255
const MIN_MEMORY_MIB = 128
/** 16 TiB: above any exporter's honest figure; a larger one is a damaged or hostile descriptor. */
const MAX_MEMORY_MIB = 16 * 1024 * 1024
/** VMware allows 10 NICs per VM; more than 16 is not a VM we were given. */
const MAX_NICS = 16
const MAX_TITLE = 200
const DOMAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$/
/** Printable text without line breaks (libvirt refuses a multi-line title). */
const PLAIN_TEXT = /^[^\p{Cc}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]+$/u

function inRange(value: number | undefined, min: number, max: number): value is number {
  return value !== undefined && Number.isSafeInteger(value) && value >= min && value <= max
}

export interface HardwareInput {
  job: JobSettings
  source: Source
  inspection?: Inspection
}

/** The hardware, and warnings (codes with messages) for every source fact that was not used. */
export function domainHardware({inspection, job, source}: HardwareInput): {hardware: DomainHardware; warnings: JobWarning[]} {
  const warnings: JobWarning[] = []
  const vm = source.vm
  const stem = outputStem(job, source)
  const name = DOMAIN_NAME.test(stem) ? stem : 'converted-vm'

  let cpus = DEFAULT_CPUS
  if (inRange(vm?.cpus, 1, MAX_CPUS)) cpus = vm.cpus
  else if (vm?.cpus !== undefined) warnings.push({code: 'HARDWARE_DEFAULTED', message: `The source's vCPU count is outside 1..${MAX_CPUS}; the domain gets ${DEFAULT_CPUS}.`})

  let memoryMiB = DEFAULT_MEMORY_MIB
  if (inRange(vm?.memoryMiB, MIN_MEMORY_MIB, MAX_MEMORY_MIB)) memoryMiB = vm.memoryMiB
  else if (vm?.memoryMiB !== undefined) warnings.push({code: 'HARDWARE_DEFAULTED', message: `The source's memory size is outside ${MIN_MEMORY_MIB} MiB..16 TiB; the domain gets ${DEFAULT_MEMORY_MIB} MiB.`})

  // A source that states its NICs (OVF, even none) gets those; one that says nothing (a disk, an AMI) gets one.
  const sourceNics = Array.isArray(vm?.nics) ? vm.nics : [{}]
  if (sourceNics.length > MAX_NICS) warnings.push({code: 'HARDWARE_DEFAULTED', message: `The source describes ${sourceNics.length} NICs; the domain gets the first ${MAX_NICS}.`})
  const nics = sourceNics.slice(0, MAX_NICS).map((nic, index): {mac?: string} => {
    if (!job.keepMacs) return {}
    const mac = typeof nic.mac === 'string' && isUnicastMac(nic.mac) ? nic.mac : undefined
    if (mac === undefined) warnings.push({code: 'MAC_NOT_KEPT', message: `--keep-macs: NIC ${index + 1} has no valid MAC address in the source; libvirt generates one.`})
    return mac === undefined ? {} : {mac}
  })
  if (job.keepMacs && sourceNics.length === 0) warnings.push({code: 'MAC_NOT_KEPT', message: '--keep-macs: the source describes no NIC, so there is no MAC to keep.'})
  const seen = new Set<string>()
  for (const [index, nic] of nics.entries()) {
    if (nic.mac === undefined) continue
    if (seen.has(nic.mac)) {
      warnings.push({code: 'MAC_NOT_KEPT', message: `--keep-macs: NIC ${index + 1} repeats an earlier NIC's MAC address; libvirt generates one for it.`})
      delete nic.mac
    } else seen.add(nic.mac)
  }

  const hardware: DomainHardware = {
    clock: inspection?.os === 'windows' ? 'localtime' : 'utc',
    cpus,
    // A loader's fact is untrusted even in type: anything but 'efi' boots BIOS.
    firmware: (inspection?.firmware ?? vm?.firmware) === 'efi' ? 'efi' : 'bios',
    machine: 'q35',
    memoryMiB,
    name,
    nics,
  }
  const title = vm?.name
  if (typeof title === 'string' && title !== name && title.length <= MAX_TITLE && PLAIN_TEXT.test(title)) hardware.title = title
  return {hardware, warnings}
}
