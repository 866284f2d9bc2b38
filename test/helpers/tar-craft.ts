/**
 * Hand-made tar headers for hostile-archive tests: the cases GNU tar will not (or cannot portably) write,
 * such as device nodes without root, forged sizes, base-256 size fields and broken checksums.
 */

export interface CraftedMember {
  name: string
  /** Member data; its length is the size unless `size` forges another. */
  data?: Buffer
  size?: number
  type?: string
  linkName?: string
  /** Store the size as GNU base-256 instead of octal. */
  base256Size?: boolean
  /** Corrupt the checksum. */
  badChecksum?: boolean
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0'
}

export function craftHeader(member: CraftedMember): Buffer {
  const block = Buffer.alloc(512)
  const size = member.size ?? member.data?.length ?? 0
  block.write(member.name, 0, 100, 'utf8')
  block.write(octal(0o644, 8), 100, 'latin1')
  block.write(octal(0, 8), 108, 'latin1')
  block.write(octal(0, 8), 116, 'latin1')
  if (member.base256Size) {
    block[124] = 0x80
    let rest = BigInt(size)
    for (let index = 135; index > 124; index--) {
      block[index] = Number(rest & 0xffn)
      rest >>= 8n
    }
  } else {
    block.write(octal(size, 12), 124, 'latin1')
  }
  block.write(octal(0, 12), 136, 'latin1')
  block.write(member.type ?? '0', 156, 'latin1')
  if (member.linkName) block.write(member.linkName, 157, 100, 'utf8')
  block.write('ustar\u000000', 257, 'latin1')
  let sum = 0
  block.fill(0x20, 148, 156)
  for (const byte of block) sum += byte
  block.write(`${octal(member.badChecksum ? sum + 1 : sum, 7)} `, 148, 'latin1')
  return block
}

function padded(data: Buffer): Buffer {
  const padding = (512 - (data.length % 512)) % 512
  return Buffer.concat([data, Buffer.alloc(padding)])
}

/** A whole tar: headers, padded data, and the two zero blocks (unless `withoutEnd`). */
export function craftTar(members: CraftedMember[], options: {withoutEnd?: boolean} = {}): Buffer {
  const parts = members.flatMap((member) => [craftHeader(member), padded(member.data ?? Buffer.alloc(0))])
  if (!options.withoutEnd) parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}
