import {dirname, isAbsolute, resolve} from 'node:path'

import {
  type BlockdevSpec,
  detectImageFormat,
  H2KError,
  parseVmdkDescriptor,
  readAt,
  readQcow2References,
} from '@hyper2kvm/plugin-api'
import {driverReferences, formatNodes} from '@hyper2kvm/plugin-api/host'

const DESCRIPTOR_BYTES = 1024 * 1024

/** Where a format node's bytes are: a host file, or a window of one (an archive member). */
function nodeFile(node: BlockdevSpec): {file: string; window?: {offset: number; size: number}} | undefined {
  const file = node.file as BlockdevSpec | undefined
  if (file?.driver === 'file' && typeof file.filename === 'string') return {file: file.filename}
  if (file?.driver === 'raw' && typeof file.offset === 'number' && typeof file.size === 'number') {
    const inner = file.file as BlockdevSpec | undefined
    if (inner?.driver === 'file' && typeof inner.filename === 'string') return {file: inner.filename, window: {offset: file.offset, size: file.size}}
  }
  return undefined
}

function unpinned(label: string, what: string): H2KError {
  return new H2KError('H2K_UNSAFE_BACKING', `${label} makes qemu open ${what} that its loader did not resolve; refusing it.`, {
    details: {disk: label},
    phase: 'load',
  })
}

/**
 * Before qemu sees a layer, read with our own code what each of its format nodes could make qemu open
 * (DRIVER_REFERENCES) and refuse anything the loader did not pin: a qcow2 external data file without a
 * `data-file` node, a sparse VMDK whose first header wraps a descriptor (capacity 0), a text descriptor
 * naming a file that is not one of the disk's declared files. Whoever wrote the loader.
 */
export async function refuseUnpinnedReferences(layer: BlockdevSpec, declaredFiles: readonly string[], label: string): Promise<void> {
  for (const node of formatNodes(layer)) {
    const refs = driverReferences(node.driver)
    const where = nodeFile(node)
    if (!where || (!refs.dataFile && !refs.descriptorExtents)) continue
    if (refs.dataFile) {
      const header = await readQcow2References(where.file, label, where.window)
      if (header.externalData && node['data-file'] === undefined) throw unpinned(label, 'an external data file')
      continue
    }
    const head = await readAt(where.file, where.window?.offset ?? 0, Math.min(64 * 1024, where.window?.size ?? 64 * 1024))
    const kind = detectImageFormat(head)
    if (kind === 'vmdk' && head.length >= 512 && head.readBigUInt64LE(12) === 0n && head.readBigUInt64LE(28) !== 0n) {
      throw unpinned(label, 'the extents of a descriptor wrapped in a sparse VMDK header (capacity 0)')
    }
    if (kind === 'vmdk-descriptor') {
      const declared = new Set(declaredFiles)
      const base = dirname(where.file)
      // qemu reads a descriptor file of up to 1 MiB; read what it would.
      const text = await readAt(where.file, where.window?.offset ?? 0, Math.min(DESCRIPTOR_BYTES, where.window?.size ?? DESCRIPTOR_BYTES))
      for (const extent of parseVmdkDescriptor(text.toString('utf8'), label).extents) {
        if (extent.filename === undefined) continue
        const path = isAbsolute(extent.filename) ? extent.filename : resolve(base, extent.filename)
        if (!declared.has(path)) throw unpinned(label, 'a VMDK extent')
      }
    }
  }
}

/** After `qemu-img info` (which does not open a data file): the image reports one the layer does not pin. */
export function refuseReportedDataFile(info: {'format-specific'?: {data?: Record<string, unknown>}}, layer: BlockdevSpec, label: string): void {
  const reported = info['format-specific']?.data?.['data-file']
  if (reported !== undefined && formatNodes(layer).every((node) => node['data-file'] === undefined)) throw unpinned(label, 'an external data file')
}
