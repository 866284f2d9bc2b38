import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {formatNode, sliceNode, validateSparseVmdk} from '@hyper2kvm/plugin-api'
import {convertSpecToRaw} from '../helpers/loader-harness.js'
import {FIXTURE_SIZE, convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {makeFooterStream} from '../helpers/vmdk-fixtures.js'

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: {code?: string; message: string}) => {
    assert.equal(error.code, code, error.message)
    if (message) assert.match(error.message, message)
    return true
  })
}

describe('validateSparseVmdk', function () {
  let dir: string
  let cleanup: () => void
  let raw: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-vmdk-sparse-'))
    raw = makePatternedRaw(join(dir, 'expected.raw'))
  })
  after(() => cleanup())

  it('reports the facts of a monolithicSparse file', async () => {
    const disk = convertFixture(raw, join(dir, 'mono.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
    const facts = await validateSparseVmdk(disk)
    assert.equal(facts.subformat, 'monolithicSparse')
    assert.equal(facts.capacityBytes, FIXTURE_SIZE)
    assert.equal(facts.grainSizeBytes, 64 * 1024)
    assert.equal(facts.version, 1)
    assert.ok(facts.allocatedGrains > 0)
    assert.match(facts.embeddedDescriptor ?? '', /createType="monolithicSparse"/)
  })

  it('reports a bare split extent (empty descriptor region) as "sparse"', async () => {
    convertFixture(raw, join(dir, 'split.vmdk'), 'vmdk', ['subformat=twoGbMaxExtentSparse'])
    const facts = await validateSparseVmdk(join(dir, 'split-s001.vmdk'))
    assert.equal(facts.subformat, 'sparse')
    assert.equal(facts.embeddedDescriptor, undefined)
  })

  it('counts zeroed grains (version 2 zeroed-grain entries) instead of treating them as offsets', async () => {
    const disk = join(dir, 'zeroed.vmdk')
    execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-o', 'zeroed_grain=on', disk, '64M'])
    execFileSync('qemu-io', ['-f', 'vmdk', '-c', 'write -P 0x42 0 1M', '-c', 'write -z 0 512k', disk], {stdio: 'pipe'})
    const facts = await validateSparseVmdk(disk)
    assert.equal(facts.version, 2)
    assert.equal(facts.zeroedGrains, 8)
    assert.equal(facts.allocatedGrains, 8)
  })

  for (const layout of ['qemu', 'footer'] as const) {
    it(`validates a streamOptimized (${layout} layout) inside a larger file, in place (an OVA member)`, async () => {
      let stream = convertFixture(raw, join(dir, `${layout}.vmdk`), 'vmdk', ['subformat=streamOptimized'])
      if (layout === 'footer') stream = makeFooterStream(stream)
      const body = readFileSync(stream)
      const container = join(dir, `${layout}.ova`)
      const offset = 3 * 512
      writeFileSync(container, Buffer.concat([Buffer.alloc(offset, 0xab), body, Buffer.alloc(1000, 0xcd)]))
      const window = {offset, size: body.length}

      const facts = await validateSparseVmdk(container, window)
      assert.equal(facts.subformat, 'streamOptimized')
      assert.equal(facts.capacityBytes, FIXTURE_SIZE)
      // And qemu reads the member in place exactly as the validator did.
      const out = convertSpecToRaw(formatNode('vmdk', sliceNode(container, offset, body.length)), join(dir, `${layout}-member.raw`))
      assert.ok(sameContent(out, 'raw', raw, 'raw'))

      // A member cut inside its grains (qemu pads the end of its streams, so cutting there would be harmless).
      await rejectsWith(validateSparseVmdk(container, {offset, size: 140 * 512}), 'H2K_INPUT_CORRUPT', new RegExp(`${layout}\\.ova \\(VMDK at byte ${offset}`))
      await rejectsWith(validateSparseVmdk(container, {offset, size: statSync(container).size}), 'H2K_INPUT_CORRUPT', /file ends after/)
    })
  }

  it('refuses a file that is not a sparse VMDK, or too small for a header', async () => {
    await rejectsWith(validateSparseVmdk(raw), 'H2K_INPUT_CORRUPT', /KDMV/)
    const tiny = join(dir, 'tiny.vmdk')
    writeFileSync(tiny, 'KDMV')
    await rejectsWith(validateSparseVmdk(tiny), 'H2K_INPUT_CORRUPT', /smaller than one sparse header/)
  })

  it('refuses headers with impossible geometry', async () => {
    const good = readFileSync(convertFixture(raw, join(dir, 'geometry.vmdk'), 'vmdk', ['subformat=monolithicSparse']))
    const variant = async (name: string, edit: (b: Buffer) => void, code: string, message: RegExp): Promise<void> => {
      const copy = Buffer.from(good)
      edit(copy)
      const path = join(dir, `geometry-${name}.vmdk`)
      writeFileSync(path, copy)
      await rejectsWith(validateSparseVmdk(path), code, message)
    }
    await variant('grain-3', (b) => b.writeBigUInt64LE(3n, 20), 'H2K_INPUT_CORRUPT', /power of two/)
    await variant('grain-huge', (b) => b.writeBigUInt64LE(2n ** 30n, 20), 'H2K_INPUT_CORRUPT', /implausibly large/)
    await variant('gtes-0', (b) => b.writeUInt32LE(0, 44), 'H2K_INPUT_CORRUPT', /0 entries/)
    await variant('gtes-4096', (b) => b.writeUInt32LE(4096, 44), 'H2K_INPUT_UNSUPPORTED', /grain tables of 4096/)
    await variant('version-9', (b) => b.writeUInt32LE(9, 4), 'H2K_INPUT_UNSUPPORTED', /version 9/)
    await variant('compress-7', (b) => b.writeUInt16LE(7, 77), 'H2K_INPUT_UNSUPPORTED', /compression algorithm 7/)
    await variant('descriptor-outside', (b) => b.writeBigUInt64LE(1_000_000n, 28), 'H2K_INPUT_CORRUPT', /embedded descriptor/)
    await variant('overhead-outside', (b) => b.writeBigUInt64LE(1_000_000n, 64), 'H2K_INPUT_CORRUPT', /metadata/)
    await variant('too-many-tables', (b) => {
      b.writeBigUInt64LE(2n ** 36n, 12) // 32 TiB ...
      b.writeBigUInt64LE(1n, 20) // ... in 512-byte grains, 1 entry per table: 2^36 tables
      b.writeUInt32LE(1, 44)
    }, 'H2K_INPUT_UNSUPPORTED', /grain directory has/)
  })
})
