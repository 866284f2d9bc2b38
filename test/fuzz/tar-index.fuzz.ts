// The tar index (ustar/GNU/pax headers, long names, member table) read from a file and from a stream, and
// the probes' peekTarNames, which must never throw. Header blocks whose checksum field is blank (8 spaces)
// get the right checksum, so mutated headers get past it (seeds are written that way).
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {writeFile} from 'node:fs/promises'

import {peekTarNames, scanTar} from '@hyper2kvm/plugin-api'
import {scanTarStream} from '@hyper2kvm/plugin-api/host'
import {h2kRefusal} from './engine/refusal.js'
import type {FuzzTarget} from './engine/target.js'

const BLANK = Buffer.from('        ')

function fillChecksums(data: Buffer): Buffer {
  const tar = Buffer.from(data)
  for (let at = 0; at + 512 <= tar.length; at += 512) {
    if (!tar.subarray(at + 148, at + 156).equals(BLANK)) continue
    let sum = 0
    for (let index = 0; index < 512; index++) sum += tar[at + index] as number
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1')
  }
  return tar
}

export const target: FuzzTarget = {
  async run(data, scratch) {
    const tar = fillChecksums(data)
    try {
      peekTarNames(tar)
    } catch (error) {
      throw new Error('peekTarNames threw, but a probe must only recognise', {cause: error})
    }
    const file = join(scratch, 'input.tar')
    await writeFile(file, tar)
    await scanTar(file, {hashMembers: () => ['sha256']})
    await scanTarStream(Readable.from([tar]), {hashMembers: (name) => (name.endsWith('.mf') ? [] : ['sha1'])})
  },
  refusalCode: h2kRefusal,
  maxLength: 32 * 1024,
  dictionary: [
    'ustar\u000000', 'ustar  \u0000', '././@LongLink', '0', '1', '2', '5', 'x', 'g', 'L', 'K', 'S', '7', '../', '/etc/passwd', './',
    '30 path=aaaaaaaaaaaaaaaaaaaaaa\n', '20 size=99999999999\n', '12 path=a/b\n', '00000001000', '77777777777', Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    Buffer.from([0xff]), BLANK,
  ],
}
