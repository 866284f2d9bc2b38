/**
 * CRC-32C (Castagnoli), as used by VHDX headers, region tables and log entries.
 * Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
 * crc32c(Buffer.from('123456789')) === 0xE3069283.
 */

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/**
 * Computes the CRC-32C of `data`. Pass the result of a previous call as `previous` to continue a running
 * checksum over several buffers.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}
