// Not a parser: a target with a known hang, runaway allocation and crash, so a test can prove the harness catches each.
import type {FuzzTarget} from './target.js'

export const target: FuzzTarget = {
  run(data) {
    if (data[0] === 0x42) for (;;);
    if (data[0] === 0x43) {
      const hoard: string[] = []
      for (;;) hoard.push(`${'x'.repeat(4096)}${hoard.length}`)
    }
    if (data[0] === 0x44) throw new TypeError('not a documented refusal')
    if (data[0] === 0x45) throw new RangeError('documented refusal')
  },
  refusalCode: (error) => (error instanceof RangeError ? 'SELFTEST_REFUSED' : undefined),
}
