import type {NetworkInterface} from '@hyper2kvm/plugin-api'

import {attribute, children, text, type XmlNode} from './ovf-xml.js'

/** CIM ResourceType values (DSP0243 / CIM_ResourceAllocationSettingData) that we read. */
const RESOURCE = {
  cpu: '3',
  disk: '17',
  ethernet: '10',
  memory: '4',
} as const

/** Controllers in the order their disks come first: IDE, then SATA, then SCSI/SAS, then anything else (NVMe, FC, ...). */
const CONTROLLER_RANK: Readonly<Record<string, number>> = {'5': 0, '20': 1, '6': 2}

export interface HardwareFacts {
  cpus?: number
  memoryMiB?: number
  firmware: 'bios' | 'efi'
  nics: NetworkInterface[]
  /** 1-based numbers of the NICs whose stated MAC address was refused (not a unicast MAC): they carry none. */
  refusedMacs: number[]
  /** OVF disk ids (or `file:<id>` for items naming a file directly) in controller/bus order. */
  diskOrder: string[]
}

/** All the resource items of a hardware section: OVF 1 `Item`, OVF 2 `StorageItem` and `EthernetPortItem`. */
function resourceItems(section: XmlNode | undefined): XmlNode[] {
  return [...children(section, 'Item'), ...children(section, 'StorageItem'), ...children(section, 'EthernetPortItem')]
}

function integer(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined
  const parsed = Number.parseInt(value, 10)
  return Number.isSafeInteger(parsed) ? parsed : undefined
}

/**
 * Bytes per unit of an OVF allocation unit string: the programmatic form "byte * 2^20" (any base and
 * exponent), or the names older exporters write ("MegaBytes", "MB", "GigaBytes"...). Unknown → undefined.
 */
export function allocationUnitBytes(units: string | undefined): number | undefined {
  if (units === undefined) return 2 ** 20
  const compact = units.replace(/\s+/g, '').toLowerCase()
  const programmatic = /^bytes?(?:\*(\d+)\^(\d+))?$/.exec(compact)
  if (programmatic) return programmatic[1] === undefined ? 1 : Number(programmatic[1]) ** Number(programmatic[2])
  const named: Record<string, number> = {
    b: 1,
    gb: 2 ** 30,
    gigabytes: 2 ** 30,
    kb: 2 ** 10,
    kilobytes: 2 ** 10,
    mb: 2 ** 20,
    megabytes: 2 ** 20,
  }
  return named[compact]
}

/**
 * Firmware from the hints exporters leave: VMware `vmw:Config firmware=efi` (or ExtraConfig), VirtualBox
 * `vbox:Machine/Hardware/Firmware type="EFI"`. Everything else boots BIOS.
 */
function firmware(section: XmlNode | undefined, system: XmlNode): 'bios' | 'efi' {
  for (const config of [...children(section, 'Config'), ...children(section, 'ExtraConfig')]) {
    if (attribute(config, 'key')?.toLowerCase() === 'firmware') return attribute(config, 'value')?.toLowerCase() === 'efi' ? 'efi' : 'bios'
  }
  for (const machine of children(system, 'Machine')) {
    for (const hardware of children(machine, 'Hardware')) {
      for (const entry of children(hardware, 'Firmware')) {
        if (attribute(entry, 'type')?.toUpperCase().startsWith('EFI')) return 'efi'
      }
    }
  }
  return 'bios'
}

/** "ovf:/disk/vmdisk1", "/disk/vmdisk1", "ovf://disk/vmdisk1" → "vmdisk1"; "ovf:/file/file1" → "file:file1". */
function hostResourceDisk(value: string | undefined): string | undefined {
  const match = /^(?:ovf:)?\/*(disk|file)\/(.+)$/i.exec(value ?? '')
  if (!match?.[2]) return undefined
  return match[1]?.toLowerCase() === 'file' ? `file:${match[2]}` : match[2]
}

function diskOrder(items: XmlNode[]): string[] {
  const controllers = new Map<string, {rank: number; bus: number; index: number}>()
  items.forEach((item, index) => {
    const id = text(item, 'InstanceID')
    // Any item can be a parent; NVMe, FC or iSCSI controllers rank after the well-known buses.
    if (id !== undefined) controllers.set(id, {bus: integer(text(item, 'Address')) ?? 0, index, rank: CONTROLLER_RANK[text(item, 'ResourceType') ?? ''] ?? 3})
  })
  const disks = items
    .map((item, index) => ({item, index}))
    .filter(({item}) => text(item, 'ResourceType') === RESOURCE.disk)
    .map(({item, index}) => {
      const parent = controllers.get(text(item, 'Parent') ?? '')
      return {
        id: hostResourceDisk(text(item, 'HostResource')),
        // Disks on no known controller keep their item order, after every attached disk.
        key: [parent?.rank ?? 9, parent?.bus ?? 0, parent?.index ?? 0, integer(text(item, 'AddressOnParent')) ?? 0, index],
      }
    })
    .filter((disk): disk is {id: string; key: number[]} => disk.id !== undefined)
  disks.sort((a, b) => {
    for (let index = 0; index < a.key.length; index++) {
      const delta = (a.key[index] ?? 0) - (b.key[index] ?? 0)
      if (delta !== 0) return delta
    }
    return 0
  })
  return [...new Set(disks.map((disk) => disk.id))]
}

/**
 * A NIC's MAC address as ovftool writes it (`rasd:Address` of the ethernet item, with --exportFlags=mac):
 * six hex pairs separated by ':' or '-', normalised to lower case with ':'. Anything else, a multicast
 * address (its first octet odd: a NIC never owns one) or all zeros is refused: undefined.
 */
export function unicastMac(value: string | undefined): string | undefined {
  const trimmed = value?.trim() ?? ''
  if (!/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/.test(trimmed)) return undefined
  const mac = trimmed.toLowerCase().replaceAll('-', ':')
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1 || mac === '00:00:00:00:00:00') return undefined
  return mac
}

/** Read CPUs, memory, firmware, NICs and disk order from a VirtualSystem's first VirtualHardwareSection. */
export function readHardware(system: XmlNode): HardwareFacts {
  const section = children(system, 'VirtualHardwareSection')[0]
  const items = resourceItems(section)
  const ofType = (type: string) => items.filter((item) => text(item, 'ResourceType') === type)
  const cpuItem = ofType(RESOURCE.cpu)[0]
  const memoryItem = ofType(RESOURCE.memory)[0]
  const memoryQuantity = integer(text(memoryItem, 'VirtualQuantity'))
  const unitBytes = allocationUnitBytes(text(memoryItem, 'AllocationUnits') ?? text(memoryItem, 'VirtualQuantityUnits'))
  const memoryMiB = memoryQuantity !== undefined && unitBytes !== undefined ? Math.round((memoryQuantity * unitBytes) / 2 ** 20) : undefined
  const refusedMacs: number[] = []
  const nics = ofType(RESOURCE.ethernet).map((item, index) => {
    const nic: NetworkInterface = {}
    const address = text(item, 'Address')
    const mac = unicastMac(address)
    if (mac !== undefined) nic.mac = mac
    else if (address !== undefined && address.trim() !== '') refusedMacs.push(index + 1)
    const name = text(item, 'ElementName') ?? text(item, 'Caption')
    const model = text(item, 'ResourceSubType')
    const network = text(item, 'Connection')
    if (name !== undefined) nic.name = name
    if (model !== undefined) nic.model = model
    if (network !== undefined) nic.network = network
    return nic
  })
  const facts: HardwareFacts = {diskOrder: diskOrder(items), firmware: firmware(section, system), nics, refusedMacs}
  const cpus = integer(text(cpuItem, 'VirtualQuantity'))
  if (cpus !== undefined && cpus > 0) facts.cpus = cpus
  if (memoryMiB !== undefined && memoryMiB > 0) facts.memoryMiB = memoryMiB
  return facts
}
