import {isZeroBlock, paddedSize, parsePaxRecords, parseTarHeader, TAR_BLOCK} from './tar-header.js'

/** Headers a probe looks at; OVA puts its descriptor first, so a handful is plenty. */
const PEEK_LIMIT = 16

/**
 * For probes: the names of the first members of a tar whose headers lie within `head` (the first bytes of
 * the file), directories included, in archive order. Null when `head` does not start with a valid ustar
 * (POSIX or GNU) header. Never throws: a probe only recognises, the loader's scan judges.
 */
export function peekTarNames(head: Buffer): string[] | null {
  if (head.length < TAR_BLOCK || head.subarray(257, 262).toString('latin1') !== 'ustar') return null
  const names: string[] = []
  let position = 0
  let pendingName: string | undefined
  try {
    while (names.length < PEEK_LIMIT && position + TAR_BLOCK <= head.length) {
      const block = head.subarray(position, position + TAR_BLOCK)
      if (isZeroBlock(block)) break
      const header = parseTarHeader(block, position)
      const dataStart = position + TAR_BLOCK
      position = dataStart + paddedSize(header.size)
      if (header.type === 'x' || header.type === 'L') {
        if (dataStart + header.size > head.length) break
        const data = head.subarray(dataStart, dataStart + header.size)
        if (header.type === 'L') {
          const end = data.indexOf(0)
          pendingName = data.subarray(0, end === -1 ? data.length : end).toString('utf8')
        } else {
          pendingName = parsePaxRecords(data, dataStart).get('path') ?? pendingName
        }
        continue
      }
      if (header.type === 'g' || header.type === 'K') continue
      names.push(pendingName ?? header.name)
      pendingName = undefined
    }
  } catch {
    return names.length > 0 ? names : null
  }
  return names
}
