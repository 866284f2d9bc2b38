import {H2KError, safeFileStem, type Source, type SourceDisk, type VmMetadata} from '@hyper2kvm/plugin-api'

import type {OvfDescriptor, OvfFile} from './ovf-descriptor.js'

/** Compressed or chunked OVF files need reassembly before anything can read them in place; say so early. */
export function refuseStoredTransform(file: OvfFile, label: string): void {
  if (file.compression !== undefined) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label}: the disk file "${file.href}" is stored ${file.compression}-compressed (ovf:compression), which hyper2kvm does not read in place.`, {
      details: {compression: file.compression, href: file.href},
      suggestions: ['Re-export the appliance without file compression (ovftool: leave out --compress), or with a compressed OVA container instead (gzip of the whole .ova).'],
    })
  }
  if (file.chunkSize !== undefined) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label}: the disk file "${file.href}" is split into chunks (ovf:chunkSize), which hyper2kvm does not reassemble.`, {
      details: {chunkSize: file.chunkSize, href: file.href},
      suggestions: ['Re-export the appliance without --chunkSize.'],
    })
  }
}

export function requireDisks(descriptor: OvfDescriptor, label: string): void {
  if (descriptor.disks.length === 0) {
    throw new H2KError('H2K_OVF_INVALID', `${label} declares no disk with data${descriptor.blankDisks.length > 0 ? ` (only blank disks: ${descriptor.blankDisks.join(', ')})` : ''}.`, {
      details: {descriptor: label},
    })
  }
}

/** The Source both OVF loaders return: VM facts from the descriptor, disks in descriptor order. */
export function ovfSource(input: string, format: 'ova' | 'ovf', descriptor: OvfDescriptor, disks: SourceDisk[], notes: string[], fallbackName: string, subformat?: string): Source {
  const vm: VmMetadata = {diskOrder: disks.map((disk) => disk.label ?? ''), firmware: descriptor.firmware, nics: descriptor.nics}
  if (descriptor.name !== undefined) vm.name = descriptor.name
  if (descriptor.cpus !== undefined) vm.cpus = descriptor.cpus
  if (descriptor.memoryMiB !== undefined) vm.memoryMiB = descriptor.memoryMiB
  if (descriptor.os !== undefined) vm.os = descriptor.os
  const allNotes = [
    ...notes,
    ...descriptor.blankDisks.map((id) => `disk ${id} has no file (a blank disk the VM would create); nothing to convert`),
    ...descriptor.refusedMacs.map((nic) => `NIC ${nic}: the descriptor's MAC address is not a unicast MAC address; it is not kept`),
  ]
  const source: Source = {disks, format, input, name: safeFileStem(descriptor.name ?? fallbackName, safeFileStem(fallbackName)), notes: allNotes, vm}
  if (subformat !== undefined) source.subformat = subformat
  return source
}
