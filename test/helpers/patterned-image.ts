import {execFileSync} from 'node:child_process'

/** Size of every test fixture disk. */
export const FIXTURE_SIZE = 64 * 1024 * 1024

/**
 * The regions every fixture holds: distinct byte patterns with holes between them, so a conversion that
 * drops, shifts or zero-fills any region is caught by `qemu-img compare`. Includes data across the 2 GB-
 * style extent split point we use for split VMDKs (32 MiB) and the very last sector.
 */
export const FIXTURE_REGIONS: ReadonlyArray<{offset: number; length: number; pattern: number}> = [
  {length: 64 * 1024, offset: 0, pattern: 0x11},
  {length: 1024 * 1024, offset: 3 * 1024 * 1024, pattern: 0x22},
  {length: 512 * 1024, offset: 12 * 1024 * 1024 + 4096, pattern: 0x33},
  {length: 2 * 1024 * 1024, offset: 31 * 1024 * 1024, pattern: 0x44},
  {length: 64 * 1024, offset: 50 * 1024 * 1024, pattern: 0x55},
  {length: 512, offset: FIXTURE_SIZE - 512, pattern: 0x66},
]

/** Write the fixture regions (or `regions`) into an existing image of format `format` with qemu-io. */
export function writePattern(path: string, format: string, regions = FIXTURE_REGIONS): void {
  const commands = regions.flatMap((r) => ['-c', `write -P ${r.pattern} ${r.offset} ${r.length}`])
  execFileSync('qemu-io', ['-f', format, ...commands, path], {stdio: 'pipe'})
}

/** A sparse raw image of FIXTURE_SIZE with the patterned regions: the expected content of every fixture. */
export function makePatternedRaw(path: string, size = FIXTURE_SIZE, regions = FIXTURE_REGIONS): string {
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path, String(size)])
  writePattern(path, 'raw', regions)
  return path
}

/** Convert the expected raw image into another format/subformat with qemu-img (never by hand). */
export function convertFixture(raw: string, out: string, format: string, options: string[] = []): string {
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...(options.length > 0 ? ['-o', options.join(',')] : []), raw, out])
  return out
}

/** True when `qemu-img compare` reports identical guest-visible content. */
export function sameContent(a: string, aFormat: string, b: string, bFormat: string): boolean {
  try {
    execFileSync('qemu-img', ['compare', '-f', aFormat, '-F', bFormat, a, b], {stdio: 'pipe'})
    return true
  } catch {
    return false
  }
}
