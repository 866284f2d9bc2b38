/** Byte-level mutations in the spirit of libFuzzer's: flips, interesting values, inserts, erases, copies, splices, dictionary words. */

import {random} from './random.js'

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x30, 0x37, 0x39]
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x100, 0x200, 0x1000, 0x10000, 0x100000, 0xfffffffe]

const randomInt = (limit: number): number => Math.floor(random() * limit)
const pick = <T>(items: readonly T[]): T => items[randomInt(items.length)] as T

export interface MutationContext {
  maxLength: number
  dictionary: readonly Buffer[]
  /** Another input of the corpus, for splicing. */
  other: () => Buffer
}

type Mutation = (data: Buffer, context: MutationContext) => Buffer

const flipBit: Mutation = (data) => {
  if (data.length === 0) return data
  const at = randomInt(data.length)
  data[at] = (data[at] as number) ^ (1 << randomInt(8))
  return data
}

const setByte: Mutation = (data) => {
  if (data.length === 0) return data
  data[randomInt(data.length)] = random() < 0.5 ? pick(INTERESTING_8) : randomInt(256)
  return data
}

const addToByte: Mutation = (data) => {
  if (data.length === 0) return data
  const at = randomInt(data.length)
  data[at] = ((data[at] as number) + randomInt(35) - 17) & 0xff
  return data
}

const setWord: Mutation = (data) => {
  const width = pick([2, 4, 8])
  if (data.length < width) return data
  const at = randomInt(data.length - width + 1)
  const value = BigInt(pick(INTERESTING_32)) * (width === 8 && random() < 0.3 ? 0x1_0000_0000n : 1n)
  const word = Buffer.alloc(8)
  const littleEndian = random() < 0.5
  if (littleEndian) word.writeBigUInt64LE(value & 0xffff_ffff_ffff_ffffn)
  else word.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn)
  word.copy(data, at, littleEndian ? 0 : 8 - width, littleEndian ? width : 8)
  return data
}

const insertBytes: Mutation = (data, context) => {
  const count = 1 + randomInt(random() < 0.8 ? 8 : 512)
  if (data.length + count > context.maxLength) return data
  const at = randomInt(data.length + 1)
  const fill = random() < 0.5 ? Buffer.alloc(count, pick(INTERESTING_8)) : Buffer.from(Array.from({length: count}, () => randomInt(256)))
  return Buffer.concat([data.subarray(0, at), fill, data.subarray(at)])
}

const eraseBytes: Mutation = (data) => {
  if (data.length < 2) return data
  const at = randomInt(data.length)
  const count = 1 + randomInt(Math.min(data.length - at, random() < 0.8 ? 8 : 4096))
  return Buffer.concat([data.subarray(0, at), data.subarray(at + count)])
}

const copyPart: Mutation = (data) => {
  if (data.length < 2) return data
  const from = randomInt(data.length)
  const count = 1 + randomInt(Math.min(data.length - from, 64))
  const to = randomInt(data.length - count + 1)
  data.copy(data, to, from, from + count)
  return data
}

const useDictionary: Mutation = (data, context) => {
  if (context.dictionary.length === 0) return data
  const word = pick(context.dictionary)
  const at = randomInt(data.length + 1)
  if (random() < 0.5 && at + word.length <= data.length) {
    word.copy(data, at)
    return data
  }
  if (data.length + word.length > context.maxLength) return data
  return Buffer.concat([data.subarray(0, at), word, data.subarray(at)])
}

const splice: Mutation = (data, context) => {
  const other = context.other()
  if (other.length === 0 || data.length === 0) return data
  const cut = randomInt(data.length)
  const from = randomInt(other.length)
  return Buffer.concat([data.subarray(0, cut), other.subarray(from)]).subarray(0, context.maxLength)
}

const MUTATIONS: readonly Mutation[] = [flipBit, setByte, addToByte, setWord, insertBytes, eraseBytes, copyPart, useDictionary, useDictionary, splice]

/** A mutated copy of `input`: 1 to 8 stacked mutations. */
export function mutate(input: Buffer, context: MutationContext): Buffer {
  let data: Buffer = Buffer.from(input)
  const rounds = 1 + randomInt(8)
  for (let i = 0; i < rounds; i++) data = (pick(MUTATIONS) as Mutation)(data, context)
  return data.length > context.maxLength ? data.subarray(0, context.maxLength) : data
}
