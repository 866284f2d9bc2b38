import {type ByteSource, COMPLETE, type Completeness, incomplete, readExact} from './byte-source.js'

/**
 * Has a qcow2 arrived whole? Its header says where the L1 table, the refcount table and the snapshot table
 * are; those tables say where every L2 table and refcount block is. All of them must lie inside the file
 * (qemu-img reads a cut qcow2's missing clusters as errors or zeros), and so must the data cluster stored
 * furthest in, which the L2 tables say (they are walked when they total at most 64 MiB: a disk of 512 GiB
 * in 64 KiB clusters; beyond, the metadata check alone decides). Header values no writer produces make the
 * file "complete" here: the loader refuses it with a reason.
 */

/** Offsets in L1/refcount table entries: bits 9..55. */
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n
/** Tables read, at most (L1 of a 4 PiB disk in 64 KiB clusters; refcount tables are smaller). */
const MAX_TABLE_BYTES = 32 * 1024 * 1024
/** L2 tables read in all, at most. */
const MAX_L2_BYTES = 64 * 1024 * 1024
const COMPRESSED = 1n << 62n
/** Incompatible feature bit 4: extended L2 entries (16 bytes, the first 8 as usual). */
const EXTENDED_L2 = 1n << 4n
/** Incompatible feature bit 2: data clusters live in an external data file, not in this one. */
const EXTERNAL_DATA = 1n << 2n

export async function qcow2Completeness(source: ByteSource): Promise<Completeness> {
  const header = await readExact(source, 0, 72)
  if (!header) return incomplete('the qcow2 header has not fully arrived')
  const version = header.readUInt32BE(4)
  const clusterBits = header.readUInt32BE(20)
  if ((version !== 2 && version !== 3) || clusterBits < 9 || clusterBits > 21) return COMPLETE
  const cluster = 2 ** clusterBits
  const l1Entries = header.readUInt32BE(36)
  const l1Offset = Number(header.readBigUInt64BE(40))
  const refcountOffset = Number(header.readBigUInt64BE(48))
  const refcountBytes = header.readUInt32BE(56) * cluster
  const snapshots = header.readUInt32BE(60)
  const snapshotOffset = Number(header.readBigUInt64BE(64))
  const within = (offset: number, length: number): boolean => Number.isSafeInteger(offset + length) && offset + length <= source.size
  if (!within(l1Offset, l1Entries * 8)) return incomplete('the qcow2 L1 table lies beyond the end of the file so far')
  if (!within(refcountOffset, refcountBytes)) return incomplete('the qcow2 refcount table lies beyond the end of the file so far')
  if (snapshots > 0 && !within(snapshotOffset, 40)) return incomplete('the qcow2 snapshot table lies beyond the end of the file so far')
  const tables = new Map<string, bigint[]>()
  for (const [what, offset, bytes] of [
    ['an L2 table', l1Offset, l1Entries * 8],
    ['a refcount block', refcountOffset, refcountBytes],
  ] as const) {
    if (bytes === 0 || bytes > MAX_TABLE_BYTES) continue
    const table = await readExact(source, offset, bytes)
    if (!table) return incomplete(`the qcow2 table of ${what}s has not fully arrived`)
    const offsets: bigint[] = []
    for (let at = 0; at + 8 <= bytes; at += 8) {
      const entry = table.readBigUInt64BE(at) & OFFSET_MASK
      if (entry === 0n) continue
      if (entry + BigInt(cluster) > BigInt(source.size)) return incomplete(`${what} of the qcow2 lies beyond the end of the file so far`)
      offsets.push(entry)
    }
    tables.set(what, offsets)
  }
  const l2Tables = tables.get('an L2 table') ?? []
  if (l2Tables.length * cluster > MAX_L2_BYTES) return COMPLETE
  const incompatible = version === 3 ? ((await readExact(source, 72, 8))?.readBigUInt64BE(0) ?? 0n) : 0n
  // Its data clusters' offsets are in another file (which the loader pins or refuses): nothing more to wait for here.
  if (incompatible & EXTERNAL_DATA) return COMPLETE
  const extended = incompatible & EXTENDED_L2
  const entryBytes = extended ? 16 : 8
  // A compressed cluster's descriptor: the host offset in the low 62 - (cluster_bits - 8) bits.
  const compressedOffsetMask = (1n << BigInt(62 - (clusterBits - 8))) - 1n
  for (const offset of l2Tables) {
    const table = await readExact(source, Number(offset), cluster)
    if (!table) return incomplete('an L2 table of the qcow2 has not fully arrived')
    for (let at = 0; at + 8 <= cluster; at += entryBytes) {
      const entry = table.readBigUInt64BE(at)
      const compressed = (entry & COMPRESSED) !== 0n
      const start = compressed ? entry & compressedOffsetMask : entry & OFFSET_MASK
      if (start === 0n) continue
      const end = compressed ? start + 1n : start + BigInt(cluster)
      if (end > BigInt(source.size)) return incomplete('a data cluster of the qcow2 lies beyond the end of the file so far')
    }
  }
  return COMPLETE
}
