import {isZeroBlock, paddedSize, parsePaxRecords, parseTarHeader, paxSize, TAR_BLOCK} from '@hyper2kvm/plugin-api/host'
import {isH2KError} from '@hyper2kvm/plugin-api'
import {type ByteSource, COMPLETE, type Completeness, incomplete, readExact} from './byte-source.js'

/**
 * Has a tar (an OVA, an AMI export) arrived whole? Walk its headers (packages/plugin-api/src/archive/tar-header.ts): every
 * member's data must be there and two zero blocks must follow the last one. When a member is a manifest
 * (`.mf`), every file it lists must be a member: an archive written with holes (a parallel downloader that
 * sized the file first) can show zero blocks where members are still to come. A header that does not parse
 * is damage, not an incomplete upload: "complete" here, refused by the loader's full scan.
 */

/** Members walked, at most (as packages/plugin-api/src/archive/tar-reader.ts's MAX_TAR_MEMBERS). */
const MAX_MEMBERS = 10_000
/** pax records and manifests read, at most. */
const MAX_META = 1024 * 1024
const MANIFEST_LINE = /^\s*(?:SHA1|SHA256|SHA512|MD5)\s*\((.+)\)\s*=\s*[0-9a-f]+\s*$/i

export async function tarCompleteness(source: ByteSource): Promise<Completeness> {
  const members = new Set<string>()
  const manifests: string[] = []
  let position = 0
  let pending: {path?: string; size?: number; longName?: string} = {}
  try {
    for (let count = 0; count < MAX_MEMBERS * 2; count++) {
      const block = await readExact(source, position, TAR_BLOCK)
      if (!block) return incomplete(`the archive has no end-of-archive blocks yet (${members.size} member(s) so far)`)
      if (isZeroBlock(block)) {
        const second = await readExact(source, position + TAR_BLOCK, TAR_BLOCK)
        if (!second) return incomplete('the archive has only one of its two end-of-archive blocks yet')
        if (!isZeroBlock(second)) return COMPLETE // not a tar end: damage, the loader's scan says so
        return manifestsSatisfied(source, manifests, members)
      }
      const header = parseTarHeader(block, position)
      const dataStart = position + TAR_BLOCK
      const size = header.type === 'x' || header.type === 'L' || header.type === 'g' ? header.size : (pending.size ?? header.size)
      const end = dataStart + paddedSize(size)
      if (dataStart + size > source.size) return incomplete(`member ${members.size + 1} of the archive has not fully arrived`)
      if (header.type === 'x' || header.type === 'L') {
        if (size > MAX_META) return COMPLETE
        const data = await source.read(dataStart, size)
        if (header.type === 'L') pending.longName = data.toString('utf8').replace(/\0.*$/s, '')
        else {
          const records = parsePaxRecords(data, dataStart)
          const path = records.get('path')
          const paxLength = records.get('size')
          if (path !== undefined) pending.path = path
          if (paxLength !== undefined) pending.size = paxSize(paxLength, dataStart)
        }
      } else if (header.type !== 'g' && header.type !== 'K') {
        const name = (pending.path ?? pending.longName ?? header.name).replace(/^(\.\/)+/, '')
        members.add(name)
        if (/\.mf$/i.test(name) && (header.type === '0' || header.type === '7')) manifests.push(`${dataStart}:${size}`)
        pending = {}
      }
      position = end
    }
  } catch (error) {
    if (isH2KError(error)) return COMPLETE
    throw error
  }
  return COMPLETE
}

async function manifestsSatisfied(source: ByteSource, manifests: string[], members: Set<string>): Promise<Completeness> {
  for (const where of manifests) {
    const [start, size] = where.split(':').map(Number) as [number, number]
    if (size > MAX_META) continue
    const text = (await source.read(start, size)).toString('utf8')
    const listed = text.split('\n').flatMap((line) => MANIFEST_LINE.exec(line)?.[1] ?? [])
    const absent = listed.filter((name) => !members.has(name.replace(/^(\.\/)+/, '')))
    if (absent.length > 0) return incomplete(`the archive ends but ${absent.length} file(s) its manifest lists are not in it yet`)
  }
  return COMPLETE
}
