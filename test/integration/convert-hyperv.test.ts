import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {readVhdxLayout} from '../../plugins/hyperv/src/vhdx-layout.js'
import {makeDifferencingVhdx} from '../helpers/make-avhdx.js'
import {FIXTURE_SIZE, convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const MiB = 1024 * 1024

describe('hyper2kvm convert: Hyper-V VHD, VHDX and differencing AVHDX', () => {
  let dir: string
  let cleanup: () => void
  let expected: string
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    expected = makePatternedRaw(join(dir, 'expected.raw'))
  })
  after(() => cleanup())

  /** A fresh dynamic VHDX the differencing writer patches (qemu must not have marked blocks ZERO). */
  const template = (name: string): string => {
    const path = join(dir, name)
    execFileSync('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', path, String(FIXTURE_SIZE)])
    return path
  }

  const cases = [
    {file: 'fixed.vhd', format: 'vpc', options: ['subformat=fixed,force_size=on'], subformat: 'fixed'},
    {file: 'dynamic.vhd', format: 'vpc', options: ['subformat=dynamic,force_size=on'], subformat: 'dynamic'},
    {file: 'disk.vhdx', format: 'vhdx', options: [], subformat: undefined},
  ]
  for (const c of cases) {
    for (const out of ['qcow2', 'raw'] as const) {
      it(`${c.file} → ${out} is identical to its source`, async () => {
        const input = convertFixture(expected, join(dir, c.file), c.format, c.options)
        const before = sha256(input)
        const result = await runCli(['convert', input, '-o', join(dir, `out-${c.file}-${out}`), '--format', out, '--json'])
        assert.equal(result.code, 0, result.stderr)
        assert.equal(result.json.input.plugin, '@hyper2kvm/plugin-hyperv')
        assert.equal(result.json.input.subformat, c.subformat)
        assert.equal(result.json.outputs[0].virtual_size, FIXTURE_SIZE)
        assert.ok(sameContent(expected, 'raw', result.json.outputs[0].path, out))
        assert.equal(sha256(input), before)
      })
    }
  }

  describe('differencing chains', () => {
    let chainDir: string
    let merged: string
    before(async () => {
      chainDir = join(dir, 'hyperv-vm')
      mkdirSync(chainDir)
      convertFixture(expected, join(chainDir, 'base.vhdx'), 'vhdx', ['block_size=1M'])
      const base = await readVhdxLayout(join(chainDir, 'base.vhdx'))
      // Level 1 overwrites part of a region and adds data in a hole; level 2 overwrites level 1 partly.
      await makeDifferencingVhdx({
        out: join(chainDir, 'snap1.avhdx'),
        parentLinkage: base.dataWriteGuid,
        parentRelativePath: 'base.vhdx',
        template: template('t1.vhdx'),
        writes: [
          {data: Buffer.alloc(256 * 1024, 0xa1), offset: 3 * MiB + 512 * 1024},
          {data: Buffer.alloc(4096, 0xa2), offset: 40 * MiB},
        ],
      })
      const snap1 = await readVhdxLayout(join(chainDir, 'snap1.avhdx'))
      await makeDifferencingVhdx({
        out: join(chainDir, 'snap2.avhdx'),
        parentLinkage: snap1.dataWriteGuid,
        parentRelativePath: 'snap1.avhdx',
        template: template('t2.vhdx'),
        writes: [{data: Buffer.alloc(2048, 0xb1), offset: 40 * MiB + 1024}],
      })
      merged = join(dir, 'merged.raw')
      copyFileSync(expected, merged)
      execFileSync('qemu-io', ['-f', 'raw', '-c', `write -P 0xa1 ${3 * MiB + 512 * 1024} ${256 * 1024}`, '-c', `write -P 0xa2 ${40 * MiB} 4096`, '-c', `write -P 0xb1 ${40 * MiB + 1024} 2048`, merged])
    })

    it('flattens a two-level AVHDX chain into one output identical to the merged disk', async () => {
      const files = ['base.vhdx', 'snap1.avhdx', 'snap2.avhdx'].map((f) => join(chainDir, f))
      const before = files.map(sha256)
      const out = join(dir, 'out-avhdx')
      const result = await runCli(['convert', join(chainDir, 'snap2.avhdx'), '-o', out, '--verify', '--json'])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.json.input.subformat, 'differencing')
      assert.deepEqual(result.json.input.notes, ['flattened a differencing chain of 3 VHDX files'])
      assert.deepEqual(result.json.disks[0].files, [files[2], files[1], files[0]])
      assert.ok(sameContent(merged, 'raw', result.json.outputs[0].path, 'qcow2'))
      assert.deepEqual(files.map(sha256), before, 'no file of the chain was written')
      assert.deepEqual(leftovers(out).sort(), ['snap2.qcow2', 'snap2.report.json'])
    })

    it('refuses a child whose parent lies outside its directory', async () => {
      const evilDir = join(dir, 'evil')
      mkdirSync(evilDir)
      await makeDifferencingVhdx({out: join(evilDir, 'child.avhdx'), parentRelativePath: '..\\hyperv-vm\\base.vhdx', template: template('t3.vhdx'), writes: [{data: Buffer.alloc(512, 1), offset: 0}]})
      const result = await runCli(['convert', join(evilDir, 'child.avhdx'), '-o', join(evilDir, 'out'), '--json'])
      assert.equal(result.json.error.code, 'H2K_UNSAFE_BACKING', result.stdout)
      assert.deepEqual(leftovers(join(evilDir, 'out')), [])
    })

    it('refuses a child whose parent is missing, or was modified since the checkpoint', async () => {
      const lonely = join(dir, 'lonely')
      mkdirSync(lonely)
      await makeDifferencingVhdx({out: join(lonely, 'child.avhdx'), parentRelativePath: 'gone.vhdx', template: template('t4.vhdx'), writes: [{data: Buffer.alloc(512, 1), offset: 0}]})
      const missing = await runCli(['convert', join(lonely, 'child.avhdx'), '-o', join(lonely, 'out'), '--json'])
      assert.equal(missing.json.error.code, 'H2K_EXTENT_MISSING', missing.stdout)
      await makeDifferencingVhdx({out: join(chainDir, 'stale.avhdx'), parentLinkage: '11111111-2222-3333-4444-555555555555', parentRelativePath: 'base.vhdx', template: template('t5.vhdx'), writes: [{data: Buffer.alloc(512, 1), offset: 0}]})
      const stale = await runCli(['convert', join(chainDir, 'stale.avhdx'), '-o', join(lonely, 'out'), '--json'])
      assert.equal(stale.json.error.code, 'H2K_INPUT_CORRUPT', stale.stdout)
      assert.deepEqual(leftovers(join(lonely, 'out')), [])
    })

    it('refuses a truncated VHDX', async () => {
      const truncated = join(dir, 'truncated.vhdx')
      copyFileSync(join(chainDir, 'base.vhdx'), truncated)
      execFileSync('truncate', ['-s', String(2 * MiB), truncated])
      const result = await runCli(['convert', truncated, '-o', join(dir, 'out-trunc'), '--json'])
      assert.equal(result.json.error.code, 'H2K_INPUT_CORRUPT', result.stdout)
      assert.deepEqual(leftovers(join(dir, 'out-trunc')), [])
    })
  })
})
