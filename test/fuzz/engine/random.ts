import {randomInt as cryptoRandomInt} from 'node:crypto'

/**
 * The fuzzer's one source of randomness: a small seeded generator (mulberry32), so a run is repeatable.
 * FUZZ_SEED picks the seed (make fuzz-ci sets one, so CI explores the same inputs every time and a red CI
 * is a finding, not bad luck); without it each run draws a new seed, and run.ts prints it.
 */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined || process.env.FUZZ_SEED === '' ? cryptoRandomInt(2 ** 31) : Number(process.env.FUZZ_SEED) >>> 0

let state = FUZZ_SEED

/** A number in [0, 1), like Math.random. */
export function random(): number {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
