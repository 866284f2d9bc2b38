// The hosted sparse VMDK validator (header, footer, embedded descriptor, grain directory and tables), fed a sparse image input.
import {join} from 'node:path'

import {validateSparseVmdk} from '@hyper2kvm/plugin-api'
import {h2kRefusal} from './engine/refusal.js'
import {decodeSparseImage, writeSparseImage} from './engine/sparse-image.js'
import type {FuzzTarget} from './engine/target.js'

export const target: FuzzTarget = {
  async run(data, scratch) {
    const file = join(scratch, 'input.vmdk')
    await writeSparseImage(file, decodeSparseImage(data))
    await validateSparseVmdk(file)
  },
  refusalCode: h2kRefusal,
  maxLength: 64 * 1024,
  dictionary: [
    'KDMV', Buffer.from([1, 0, 0, 0]), Buffer.from([3, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from('0a200d0a', 'hex'), 'createType="streamOptimized"', 'createType="monolithicSparse"', 'createType="monolithicFlat"',
    'RW 2048 SPARSE "x.vmdk"', 'RW 2048 FLAT "/etc/passwd" 0', 'ddb.virtualHWVersion', Buffer.from([0, 0, 1, 0]), Buffer.from([0x80, 0, 0, 0]),
  ],
}
