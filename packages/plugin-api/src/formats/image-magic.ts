/** Image formats we recognise by their first bytes, named by their qemu driver. */
export type MagicFormat = 'qcow2' | 'vmdk' | 'vmdk-descriptor' | 'vpc' | 'vhdx' | 'vdi' | 'qed'

/**
 * Recognise a disk image format from its first bytes (at least 512 are needed for VDI and descriptors).
 * Returns null for anything else (raw disks have no magic).
 */
export function detectImageFormat(head: Buffer): MagicFormat | null {
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2'
  if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'KDMV') return 'vmdk'
  if (head.length >= 8 && head.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc'
  if (head.length >= 8 && head.subarray(0, 8).toString('latin1') === 'vhdxfile') return 'vhdx'
  if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'QFI\u00fb') return 'qcow2'
  if (head.length >= 4 && head.readUInt32LE(0) === 0x00444651) return 'qed'
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return 'vdi'
  if (looksLikeVmdkDescriptor(head)) return 'vmdk-descriptor'
  return null
}

/** A text VMDK descriptor: printable text with the descriptor header or a createType line near the top. */
export function looksLikeVmdkDescriptor(head: Buffer): boolean {
  const text = head.subarray(0, Math.min(head.length, 4096)).toString('latin1')
  // The padding after the text is NULs, possibly with line ends among them (qemu-img writes "\0\n\0\0…").
  if (/[\x00-\x08\x0e-\x1f]/.test(text.replace(/[\0\s]+$/, ''))) return false
  return /^\s*#\s*Disk DescriptorFile/im.test(text) || (/^\s*createType\s*=/m.test(text) && /^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+\w+/m.test(text))
}

/** A VHD with its footer copy at offset 0 (dynamic/differencing) or only at the end (fixed). */
export function isFixedVhdFooter(tail: Buffer): boolean {
  return tail.length >= 512 && tail.subarray(tail.length - 512, tail.length - 504).toString('latin1') === 'conectix'
}

/** The first bytes are a gzip member's magic (1f 8b): a .tar.gz/.tgz/.ova that must be decompressed before it is read. */
export function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b
}
