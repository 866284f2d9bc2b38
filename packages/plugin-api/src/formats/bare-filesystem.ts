/**
 * A disk image that is one filesystem with no partition table (old paravirtual AMIs, Xen exports): ext2/3/4,
 * XFS or btrfs, recognised from its superblock. The bytes are the input's and untrusted: every field is read
 * at a fixed offset inside the bytes given, sizes are checked against the filesystem's own limits before
 * they count, and nothing is allocated or looped over by a size the image states.
 */

export type BareFilesystemType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs'

const BARE_FILESYSTEM_TYPES: ReadonlySet<string> = new Set<BareFilesystemType>(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs'])

/** A raw source disk the loader recognised as a bare filesystem (its subformat is the filesystem type). */
export function isBareFilesystemDisk(disk: {format: string; subformat?: string}): boolean {
  return disk.format === 'raw' && disk.subformat !== undefined && BARE_FILESYSTEM_TYPES.has(disk.subformat)
}

export interface BareFilesystem {
  type: BareFilesystemType
  /** Bytes the superblock says the filesystem spans (a bigint: an image may state anything up to 2^64). */
  bytes: bigint
}

/** How many first bytes the detector needs to see every superblock it knows (btrfs: 64 KiB + its 4 KiB). */
export const BARE_FILESYSTEM_HEAD = 64 * 1024 + 4096

const EXT_SUPER = 1024
const EXT_MAGIC = 0xef53
const XFS_MAGIC = 'XFSB'
const BTRFS_SUPER = 64 * 1024
const BTRFS_MAGIC = '_BHRfS_M'

// ext feature bits that only ext4 sets (incompat: extents, 64bit, mmp, flex_bg, ea_inode, dirdata, csum_seed,
// large_dir, inline_data, encrypt, casefold; ro_compat: huge_file, gdt_csum, dir_nlink, extra_isize, quota,
// bigalloc, metadata_csum, project, verity).
const EXT4_INCOMPAT = 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000
const EXT4_RO_COMPAT = 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x8000
const EXT3_HAS_JOURNAL = 0x4

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0
}

/** An MBR boot signature or a GPT header: a partitioned disk, whatever filesystem magic its first bytes also hold. */
export function hasPartitionTable(head: Buffer): boolean {
  if (head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART') return true
  return head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa
}

function ext(head: Buffer): BareFilesystem | null {
  // The fields read below end at 1024 + 0x68; a head that stops earlier is a truncated superblock.
  if (head.length < EXT_SUPER + 0x68 || head.readUInt16LE(EXT_SUPER + 0x38) !== EXT_MAGIC) return null
  const inodes = head.readUInt32LE(EXT_SUPER)
  const blocksLow = head.readUInt32LE(EXT_SUPER + 0x04)
  const logBlock = head.readUInt32LE(EXT_SUPER + 0x18)
  // Block sizes are 1 KiB << 0..6 (64 KiB); anything else is not an ext superblock that mounts.
  if (inodes === 0 || blocksLow === 0 || logBlock > 6) return null
  const incompat = head.readUInt32LE(EXT_SUPER + 0x60)
  const roCompat = head.readUInt32LE(EXT_SUPER + 0x64)
  const compat = head.readUInt32LE(EXT_SUPER + 0x5c)
  let blocks = BigInt(blocksLow)
  // 64bit: the high half of the block count is at 0x150 (inside the 1 KiB superblock).
  if (incompat & 0x80 && head.length >= EXT_SUPER + 0x154) blocks |= BigInt(head.readUInt32LE(EXT_SUPER + 0x150)) << 32n
  const type: BareFilesystemType = incompat & EXT4_INCOMPAT || roCompat & EXT4_RO_COMPAT ? 'ext4' : compat & EXT3_HAS_JOURNAL ? 'ext3' : 'ext2'
  return {bytes: blocks * BigInt(1024 << logBlock), type}
}

function xfs(head: Buffer): BareFilesystem | null {
  // magic, blocksize (u32 BE at 4), dblocks (u64 BE at 8): a head shorter than 16 bytes is truncated.
  if (head.length < 16 || head.subarray(0, 4).toString('latin1') !== XFS_MAGIC) return null
  const blockSize = head.readUInt32BE(4)
  const blocks = head.readBigUInt64BE(8)
  if (!isPowerOfTwo(blockSize) || blockSize < 512 || blockSize > 65_536 || blocks === 0n) return null
  return {bytes: blocks * BigInt(blockSize), type: 'xfs'}
}

function btrfs(head: Buffer): BareFilesystem | null {
  const at = BTRFS_SUPER
  // bytenr (u64 at +48), magic (+64), total_bytes (+112), sectorsize (u32 at +144): the superblock's own
  // offset must be where it was found, as btrfs itself checks.
  if (head.length < at + 148 || head.subarray(at + 64, at + 72).toString('latin1') !== BTRFS_MAGIC) return null
  if (head.readBigUInt64LE(at + 48) !== BigInt(BTRFS_SUPER)) return null
  const sectorSize = head.readUInt32LE(at + 144)
  const bytes = head.readBigUInt64LE(at + 112)
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 65_536 || bytes === 0n) return null
  return {bytes, type: 'btrfs'}
}

/**
 * The filesystem a partitionless image is, from its first bytes (at least BARE_FILESYSTEM_HEAD to see btrfs),
 * or null: no known superblock, a superblock cut short or with impossible sizes, or a partition table (an
 * MBR or GPT wins: a filesystem signature inside a partitioned disk is not a bare filesystem).
 */
export function detectBareFilesystem(head: Buffer): BareFilesystem | null {
  if (hasPartitionTable(head)) return null
  return xfs(head) ?? ext(head) ?? btrfs(head)
}
