import {H2KError, type NetworkInterface} from '@hyper2kvm/plugin-api'

import {readHardware} from './ovf-hardware.js'
import {attribute, child, children, parseOvfXml, text, type XmlNode} from './ovf-xml.js'

/** A File of the OVF References section: what a disk's bytes are stored in. */
export interface OvfFile {
  id: string
  href: string
  size?: number
  /** `ovf:compression` (e.g. "gzip"): the file is stored compressed. */
  compression?: string
  /** `ovf:chunkSize`: the file is split into numbered chunks. */
  chunkSize?: number
}

export interface OvfDisk {
  /** The OVF disk id (or the file id for old items that name a file directly). */
  id: string
  file: OvfFile
}

/** What hyper2kvm needs from an OVF descriptor. */
export interface OvfDescriptor {
  name?: string
  os?: string
  cpus?: number
  memoryMiB?: number
  firmware: 'bios' | 'efi'
  nics: NetworkInterface[]
  /** 1-based numbers of the NICs whose stated MAC address was refused (never quoted: the text is untrusted). */
  refusedMacs: number[]
  files: OvfFile[]
  /** Disks with data, in controller/bus order (DiskSection order for disks no hardware item places). */
  disks: OvfDisk[]
  /** Disks declared without a file (blank disks a deployment would create); there is nothing to convert. */
  blankDisks: string[]
}

function invalid(label: string, why: string): H2KError {
  return new H2KError('H2K_OVF_INVALID', `${label}: ${why}`, {details: {descriptor: label}})
}

function optionalSize(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined
  const size = Number(value)
  return Number.isSafeInteger(size) ? size : undefined
}

function readFiles(envelope: XmlNode, label: string): OvfFile[] {
  const seen = new Set<string>()
  return children(child(envelope, 'References'), 'File').map((node) => {
    const id = attribute(node, 'id')
    const href = attribute(node, 'href')
    if (id === undefined || href === undefined) throw invalid(label, 'a References/File lacks ovf:id or ovf:href.')
    if (seen.has(id)) throw invalid(label, `the file id "${id}" is declared twice.`)
    seen.add(id)
    const file: OvfFile = {href, id}
    const size = optionalSize(attribute(node, 'size'))
    const compression = attribute(node, 'compression')
    const chunkSize = optionalSize(attribute(node, 'chunkSize'))
    if (size !== undefined) file.size = size
    if (compression !== undefined && compression.toLowerCase() !== 'identity') file.compression = compression
    if (chunkSize !== undefined && chunkSize > 0) file.chunkSize = chunkSize
    return file
  })
}

function theVirtualSystem(envelope: XmlNode, label: string): XmlNode {
  const systems = [...children(envelope, 'VirtualSystem'), ...children(child(envelope, 'VirtualSystemCollection'), 'VirtualSystem')]
  if (systems.length === 0) throw invalid(label, 'the descriptor has no VirtualSystem.')
  if (systems.length > 1) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} describes ${systems.length} virtual machines (a vApp); hyper2kvm converts one VM at a time.`, {
      details: {descriptor: label},
      suggestions: ['Export each VM of the vApp as its own OVA/OVF.'],
    })
  }
  return systems[0] as XmlNode
}

/**
 * Read an OVF descriptor (1.x or 2.x, any exporter) into the facts a conversion needs. The XML is
 * untrusted: DTDs are refused and nothing it names is opened here.
 */
export function parseOvfDescriptor(xml: string, label: string): OvfDescriptor {
  const envelope = parseOvfXml(xml, label)
  const files = readFiles(envelope, label)
  const filesById = new Map(files.map((file) => [file.id, file]))
  const system = theVirtualSystem(envelope, label)
  const hardware = readHardware(system)

  const declared: OvfDisk[] = []
  const blankDisks: string[] = []
  const diskIds = new Set<string>()
  for (const node of children(child(envelope, 'DiskSection'), 'Disk')) {
    const id = attribute(node, 'diskId')
    if (id === undefined) throw invalid(label, 'a DiskSection/Disk lacks ovf:diskId.')
    if (diskIds.has(id)) throw invalid(label, `the disk id "${id}" is declared twice.`)
    diskIds.add(id)
    const fileRef = attribute(node, 'fileRef')
    if (fileRef === undefined) {
      blankDisks.push(id)
      continue
    }
    const file = filesById.get(fileRef)
    if (!file) throw invalid(label, `disk "${id}" refers to the file "${fileRef}", which References does not declare.`)
    declared.push({file, id})
  }
  const byId = new Map(declared.map((disk) => [disk.id, disk]))
  const ordered: OvfDisk[] = []
  for (const id of hardware.diskOrder) {
    if (id.startsWith('file:')) {
      // Pre-DiskSection descriptors point items at a file directly.
      const file = filesById.get(id.slice(5))
      if (file && !ordered.some((disk) => disk.file === file)) ordered.push({file, id: file.id})
      continue
    }
    const disk = byId.get(id)
    if (disk && !ordered.includes(disk)) ordered.push(disk)
  }
  for (const disk of declared) if (!ordered.includes(disk)) ordered.push(disk)

  const os = child(system, 'OperatingSystemSection')
  const descriptor: OvfDescriptor = {
    blankDisks,
    disks: ordered,
    files,
    firmware: hardware.firmware,
    nics: hardware.nics,
    refusedMacs: hardware.refusedMacs,
  }
  const name = text(system, 'Name') ?? attribute(system, 'id')
  const osName = text(os, 'Description') ?? attribute(os, 'osType') ?? text(os, 'OSType')
  if (name !== undefined) descriptor.name = name
  if (osName !== undefined) descriptor.os = osName
  if (hardware.cpus !== undefined) descriptor.cpus = hardware.cpus
  if (hardware.memoryMiB !== undefined) descriptor.memoryMiB = hardware.memoryMiB
  return descriptor
}

/** True when text looks like an OVF envelope (for probes): an Envelope element and the DMTF OVF namespace. */
export function looksLikeOvf(head: string): boolean {
  return /<(?:[\w-]+:)?Envelope[\s>]/.test(head) && /schemas\.dmtf\.org\/ovf\/envelope\//.test(head)
}
