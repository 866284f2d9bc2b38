import assert from 'node:assert/strict'

import {ConvertProgressParser} from '../../src/qemu/convert-progress.js'
import {ProgressMeter, formatBytes, formatDuration} from '../../src/render/progress-meter.js'

describe('qemu-img progress parsing', () => {
  it('parses CR-separated records split across chunks, once per new value', () => {
    const parser = new ConvertProgressParser()
    assert.deepEqual(parser.push('    (0.00/100%)\r    (1.'), [0])
    assert.deepEqual(parser.push('56/100%)\r    (1.56/100%)\r'), [1.56])
    assert.deepEqual(parser.push('    (100.00/100%)\n'), [100])
  })

  it('ignores noise', () => {
    assert.deepEqual(new ConvertProgressParser().push('qemu-img: warning\n'), [])
  })
})

describe('progress meter', () => {
  it('shows percent, bytes, rate and ETA', () => {
    const meter = new ProgressMeter()
    meter.update({bytesDone: 0, bytesTotal: 100 * 1024 * 1024, percent: 0}, 0)
    const line = meter.update({bytesDone: 50 * 1024 * 1024, bytesTotal: 100 * 1024 * 1024, percent: 50}, 1000)
    assert.equal(line, '50% 50.0 MiB/100.0 MiB 50.0 MiB/s ETA 1s')
  })

  it('formats sizes and durations', () => {
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatDuration(125), '2m05s')
    assert.equal(formatDuration(Number.NaN), '?')
  })
})
