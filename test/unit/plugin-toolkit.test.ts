import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import * as toolkit from '@hyper2kvm/plugin-api'
import {H2KError, isGzip, type ProgressUpdate, readAt, readBoundedText, readExact, readUpTo, tarScanReporter} from '@hyper2kvm/plugin-api'

import * as injected from '../../src/plugin-api.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** The toolkit @hyper2kvm/plugin-api gives plugins instead of private copies (issue #11), on real files. */
describe('@hyper2kvm/plugin-api toolkit', () => {
  let tmp: ReturnType<typeof makeTempDir>
  const bytes = Buffer.from(Array.from({length: 1000}, (_, i) => i % 251))
  let file: string
  beforeEach(() => {
    tmp = makeTempDir()
    file = join(tmp.dir, 'data.bin')
    writeFileSync(file, bytes)
  })
  afterEach(() => tmp.cleanup())

  it('readUpTo reads the window asked for, and fewer bytes only where the file ends', async () => {
    const handle = await open(file, 'r')
    try {
      assert.deepEqual(await readUpTo(handle, 100, 200), bytes.subarray(100, 300))
      assert.deepEqual(await readUpTo(handle, 900, 500), bytes.subarray(900))
      assert.equal((await readUpTo(handle, 5000, 10)).length, 0)
      assert.equal((await readUpTo(handle, 0, 0)).length, 0)
    } finally {
      await handle.close()
    }
  })

  it('readExact returns exactly the bytes asked for, or throws the caller\'s error with the bytes it got', async () => {
    const handle = await open(file, 'r')
    try {
      assert.deepEqual(await readExact(handle, 10, 990, () => new Error('unreachable')), bytes.subarray(10))
      const got: number[] = []
      await assert.rejects(
        readExact(handle, 950, 100, (bytesRead) => {
          got.push(bytesRead)
          return new H2KError('H2K_INPUT_CORRUPT', 'the table lies beyond the end of the file')
        }),
        (error: unknown) => error instanceof H2KError && error.code === 'H2K_INPUT_CORRUPT',
      )
      assert.deepEqual(got, [50])
    } finally {
      await handle.close()
    }
  })

  it('readAt opens, reads and closes: the whole window even when it spans many pages', async () => {
    const big = join(tmp.dir, 'big.bin')
    const content = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a)
    writeFileSync(big, content)
    assert.deepEqual(await readAt(big, 1, content.length), content.subarray(1))
  })

  it('readBoundedText reads a text or a window of one, drops a byte-order mark, and refuses an oversized one with the caller\'s code before reading it', async () => {
    const text = join(tmp.dir, 'web01.mf')
    writeFileSync(text, Buffer.concat([Buffer.from('junk'), Buffer.from('\uFEFFSHA256(disk1.vmdk)= ab\n', 'utf8'), Buffer.from('tail')]))
    const window = {offset: 4, size: Buffer.byteLength('\uFEFFSHA256(disk1.vmdk)= ab\n')}
    assert.equal(await readBoundedText(text, window, {code: 'H2K_MANIFEST_MISMATCH', label: 'web01.mf'}), 'SHA256(disk1.vmdk)= ab\n')
    await assert.rejects(readBoundedText(text, {offset: 0, size: 33}, {code: 'H2K_OVF_INVALID', label: 'web01.ovf', limit: 32}), (error: unknown) => {
      assert.ok(error instanceof H2KError)
      assert.equal(error.code, 'H2K_OVF_INVALID')
      assert.match(error.message, /^web01\.ovf is 33 bytes, more than the 32 bytes/)
      assert.ok(!error.message.includes('SHA256'), 'the refusal never quotes the refused text')
      return true
    })
  })

  it('isGzip knows gzip data by its magic, whatever the name', () => {
    assert.equal(isGzip(gzipSync(Buffer.from('ustar'))), true)
    assert.equal(isGzip(Buffer.from('ustar\0')), false)
    assert.equal(isGzip(Buffer.from([0x1f])), false)
    assert.equal(isGzip(Buffer.alloc(0)), false)
  })

  it('tarScanReporter turns scan steps into the stage\'s progress reports, with a percentage only when the total is known', () => {
    const reports: ProgressUpdate[] = []
    const onProgress = tarScanReporter({report: (progress) => reports.push(progress)}, 'Decompressing the OVA')
    onProgress({bytesDone: 50, bytesTotal: 200, member: 'disk1.vmdk'})
    onProgress({bytesDone: 300, bytesTotal: 200})
    onProgress({bytesDone: 7})
    assert.deepEqual(reports, [
      {bytesDone: 50, bytesTotal: 200, message: 'Decompressing the OVA', percent: 25},
      {bytesDone: 300, bytesTotal: 200, message: 'Decompressing the OVA', percent: 100},
      {bytesDone: 7, bytesTotal: undefined, message: 'Decompressing the OVA'},
    ])
  })
})

describe('the API the host injects into register hooks', () => {
  it('carries every runtime value of @hyper2kvm/plugin-api, the very same objects (one H2KError class for host and plugins), plus the host services', () => {
    for (const [name, value] of Object.entries(toolkit)) assert.equal((injected as Record<string, unknown>)[name], value, name)
    assert.equal(typeof injected.imageInfo, 'function')
    assert.ok(new injected.H2KError('H2K_INPUT_CORRUPT', 'x') instanceof toolkit.H2KError)
  })

  it('offers the toolkit and not the internals no plugin needs', () => {
    for (const name of ['register', 'REGISTER_HOOK', 'PLUGIN_API_VERSION', 'H2KError', 'readExact', 'readUpTo', 'readBoundedText', 'isGzip', 'tarScanReporter', 'scanArchive', 'scanTar']) {
      assert.ok(name in toolkit, `${name} is exported`)
    }
    for (const name of ['scanGzipTar', 'scanTarStream', 'ERROR_CATALOG', 'DECOMPRESS_RESERVE_BYTES', 'DRIVER_REFERENCES', 'parseTarHeader']) {
      assert.ok(!(name in toolkit), `${name} is not exported`)
    }
  })
})
