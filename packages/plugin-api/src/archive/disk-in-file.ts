import {stat} from 'node:fs/promises'

import {H2KError, isH2KError} from '../errors/h2k-error.js'
import {detectImageFormat, isFixedVhdFooter} from '../formats/image-magic.js'
import {readQcow2References} from '../formats/qcow2-header.js'
import {validateSparseVmdk} from '../formats/vmdk-sparse.js'
import {readAt} from '../fs/read-head.js'
import {formatNode, sliceNode} from '../qemu/image-spec.js'
import type {BlockdevSpec} from '../contract/stage-types.js'

/** A byte range of a host file holding one disk image (an archive member). */
export interface ByteWindow {
  offset: number
  size: number
}

export interface DiskInFile {
  spec: BlockdevSpec
  /** Human format name: vmdk, vhd, vhdx, qcow2, vdi, raw. */
  format: string
  subformat?: string
}

export interface DescribeDiskOptions {
  /** The disk is this window of the file (e.g. a tar member); the whole file when absent. */
  window?: ByteWindow
  /** How to name the disk in messages, e.g. "disk1.vmdk in appliance.ova". */
  label: string
}

const HEAD_BYTES = 64 * 1024

function vhdDiskType(footer: Buffer): string {
  switch (footer.readUInt32BE(60)) {
    case 2:
      return 'fixed'
    case 3:
      return 'dynamic'
    case 4:
      return 'differencing'
    default:
      return 'unknown'
  }
}

/** qcow2 fields that make qemu open another file (image-spec's DRIVER_REFERENCES): a backing file, an external data file. */
async function qcow2OtherFile(file: string, label: string, window: ByteWindow | undefined): Promise<string | null> {
  const refs = await readQcow2References(file, label, window)
  if (refs.backingFile !== undefined) return 'a backing file'
  if (refs.externalData) return 'an external data file'
  return null
}

/**
 * Recognise the disk image stored in a file (or a window of one) by its magic bytes and build the qemu spec
 * that opens it read-only in place, format stated explicitly. Sparse VMDKs are validated first (truncation
 * is H2K_INPUT_CORRUPT); text VMDK descriptors, delta VMDKs, differencing VHDs and qcow2 images naming other
 * files are refused, because a single file or member cannot carry what they refer to.
 */
export async function describeDiskInFile(file: string, options: DescribeDiskOptions): Promise<DiskInFile> {
  const {label, window} = options
  const offset = window?.offset ?? 0
  const size = window?.size ?? (await stat(file)).size
  if (size === 0) throw new H2KError('H2K_INPUT_CORRUPT', `${label} is empty (0 bytes).`, {details: {file, label}})
  const head = await readAt(file, offset, Math.min(HEAD_BYTES, size))
  const container: BlockdevSpec | string = window ? sliceNode(file, window.offset, window.size) : file
  const magic = detectImageFormat(head)
  switch (magic) {
    case 'vmdk': {
      const facts = await validateSparseVmdk(file, window).catch((error: unknown) => {
        // Its message names the archive and a byte offset; say which member that is.
        throw isH2KError(error) && window ? new H2KError(error.code, `${label}: ${error.message}`, {cause: error, details: error.details}) : error
      })
      const descriptor = facts.embeddedDescriptor ?? ''
      if (/^\s*parentFileNameHint\s*=/im.test(descriptor) || /^\s*parentCID\s*=\s*(?!ffffffff\b)[0-9a-f]+/im.test(descriptor)) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${label} is a VMDK delta (snapshot) disk whose parent is not part of it.`, {
          details: {file, label},
          suggestions: ['Consolidate the snapshots on the source side and export the VM again.'],
        })
      }
      return {format: 'vmdk', spec: formatNode('vmdk', container), subformat: facts.subformat}
    }
    case 'vmdk-descriptor':
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} is a text VMDK descriptor; its extents cannot be opened from here.`, {
        details: {file, label},
        suggestions: ['Export the VM as an OVA with ovftool (it writes streamOptimized disks), or convert the VMDK files directly.'],
      })
    case 'qcow2': {
      const other = await qcow2OtherFile(file, label, window)
      if (other) throw new H2KError('H2K_UNSAFE_BACKING', `${label} is a qcow2 image with ${other}; refusing to follow it.`, {details: {file, label}})
      return {format: 'qcow2', spec: formatNode('qcow2', container)}
    }
    case 'vpc': {
      const subformat = vhdDiskType(head)
      if (subformat === 'differencing') {
        throw new H2KError('H2K_UNSAFE_BACKING', `${label} is a differencing VHD whose parent is not part of it.`, {
          details: {file, label},
          suggestions: ['Merge the differencing disk into its parent on the source side (Hyper-V: Edit Disk → Merge).'],
        })
      }
      return {format: 'vhd', spec: formatNode('vpc', container), subformat}
    }
    case 'vhdx':
      return {format: 'vhdx', spec: formatNode('vhdx', container)}
    case 'vdi':
      return {format: 'vdi', spec: formatNode('vdi', container)}
    case 'qed':
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} is a QED image, which hyper2kvm does not read.`, {
        details: {file, label},
        suggestions: ['Convert it to qcow2 with qemu-img on a trusted machine first.'],
      })
    case null: {
      // A fixed VHD is raw data followed by a 512-byte footer; only the footer tells it from raw.
      if (size >= 1024 && isFixedVhdFooter(await readAt(file, offset + size - 512, 512))) {
        return {format: 'vhd', spec: formatNode('vpc', container), subformat: 'fixed'}
      }
      return {format: 'raw', spec: formatNode('raw', container)}
    }
  }
}
