import {H2KError, type VmdkDescriptor, resolveContainedFile, validateSparseVmdk} from '@hyper2kvm/plugin-api'
import {stat} from 'node:fs/promises'
import {basename, dirname} from 'node:path'

import type {ResolvedExtent} from './sanitized-descriptor.js'

const SECTOR = 512

function unsupported(descriptorName: string, line: number, what: string, suggestion: string): H2KError {
  return new H2KError('H2K_INPUT_UNSUPPORTED', `${descriptorName}: line ${line}: ${what}, which hyper2kvm cannot convert.`, {
    details: {descriptor: descriptorName, line},
    suggestions: [suggestion],
  })
}

/**
 * Check every extent a text descriptor names and resolve it to a real file inside the descriptor's own
 * folder (resolveContainedFile: no absolute paths, "..", URLs or symlinks leaving the folder; a missing
 * file is H2K_EXTENT_MISSING). Flat extents must hold as many bytes as the descriptor says; sparse
 * extents are validated (qemu reads a truncated one as zeros) and must be as large as their line says.
 */
export async function resolveExtents(descriptorPath: string, descriptor: VmdkDescriptor): Promise<ResolvedExtent[]> {
  const name = basename(descriptorPath)
  const folder = dirname(descriptorPath)
  const resolved: ResolvedExtent[] = []
  for (const extent of descriptor.extents) {
    if (extent.access === 'NOACCESS') throw unsupported(name, extent.line, 'a NOACCESS extent (data that may not be read)', 'Export the disk again with all of its data accessible.')
    switch (extent.type) {
      case 'ZERO':
        throw unsupported(name, extent.line, 'a ZERO extent', 'Clone the disk on the source side (vmkfstools -i disk.vmdk -d thin out.vmdk).')
      case 'VMFSSPARSE':
      case 'SESPARSE':
        throw unsupported(name, extent.line, `an ESXi snapshot delta extent (${extent.type})`, 'Consolidate the VM snapshots on ESXi (Snapshots → Delete All) and copy the disk again.')
      case 'VMFSRDM':
      case 'VMFSRAW':
        throw unsupported(name, extent.line, 'a raw device mapping extent (its data lives on a SAN LUN)', 'Clone the RDM to a virtual disk: vmkfstools -i disk.vmdk -d thin out.vmdk')
      default:
        break
    }
    const path = await resolveContainedFile(folder, extent.filename!, {referrer: name, what: 'extent'})
    const {size} = await stat(path)
    if (extent.type === 'FLAT' || extent.type === 'VMFS') {
      const needed = (extent.offset + extent.sectors) * SECTOR
      if (size < needed) {
        throw new H2KError('H2K_INPUT_CORRUPT', `${name}: extent "${extent.filename}" holds ${size} bytes, but the descriptor needs ${needed} (${extent.sectors} sectors from sector ${extent.offset}): the file is truncated.`, {
          details: {descriptor: name, extent: extent.filename, needed, size},
        })
      }
    } else {
      const facts = await validateSparseVmdk(path)
      if (facts.capacityBytes !== extent.sectors * SECTOR) {
        throw new H2KError('H2K_INPUT_CORRUPT', `${name}: extent "${extent.filename}" holds ${facts.capacityBytes / SECTOR} sectors, but its descriptor line says ${extent.sectors}.`, {
          details: {descriptor: name, extent: extent.filename},
        })
      }
    }
    resolved.push({extent, path, size})
  }
  return resolved
}
