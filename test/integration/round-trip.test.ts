import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {basename, join} from 'node:path'

import {readVhdxLayout} from '../../plugins/hyperv/src/vhdx-layout.js'
import {makeDifferencingVhdx} from '../helpers/make-avhdx.js'
import {SECOND_REGIONS, manifestFor, ovfText} from '../helpers/ovf-fixtures.js'
import {FIXTURE_SIZE, convertFixture, makePatternedRaw, sameContent, writePattern} from '../helpers/patterned-image.js'
import {leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const MiB = 1024 * 1024

interface Fixture {
  /** What to pass to `convert`. */
  input: string
  /** Expected raw content of each output, in output order. */
  expected: string[]
  /** Expected output file stems (without the format extension). */
  names: string[]
  loader: string
  subformat?: string
}

/** sha256 of every file in the input's directory: converting must change none of them. */
function fingerprint(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).filter((f) => statSync(join(dir, f)).isFile()).map((f) => [f, sha256(join(dir, f))]))
}

/**
 * Every input kind, built at test time from the patterned raw image with qemu-img and tar, converted by
 * the real CLI to qcow2 and to raw, and compared with `qemu-img compare`.
 */
describe('round trip: every input format through `hyper2kvm convert` to qcow2 and raw', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  let disk1: string
  let disk2: string
  const own = (name: string): string => {
    const path = join(dir, name)
    mkdirSync(path)
    return path
  }

  before(() => {
    ;({cleanup, dir} = makeTempDir())
    disk1 = makePatternedRaw(join(dir, 'disk1.raw'))
    disk2 = makePatternedRaw(join(dir, 'disk2.raw'), FIXTURE_SIZE, SECOND_REGIONS)
  })
  after(() => cleanup())

  const vmdk = (subformat: string) => (): Fixture => {
    const d = own(`vmdk-${subformat}`)
    const input = convertFixture(disk1, join(d, 'disk.vmdk'), 'vmdk', [`subformat=${subformat}`])
    return {expected: [disk1], input, loader: 'loader:vmdk', names: ['disk'], subformat}
  }

  const fixtures: Record<string, () => Fixture | Promise<Fixture>> = {
    'VMDK monolithicSparse': vmdk('monolithicSparse'),
    'VMDK streamOptimized': vmdk('streamOptimized'),
    'VMDK monolithicFlat (descriptor + -flat.vmdk)': vmdk('monolithicFlat'),
    'VMDK twoGbMaxExtentSparse': vmdk('twoGbMaxExtentSparse'),
    'VMDK twoGbMaxExtentFlat': vmdk('twoGbMaxExtentFlat'),
    'VMDK -flat.vmdk given directly (descriptor found)': () => {
      const d = own('vmdk-flat-direct')
      convertFixture(disk1, join(d, 'server.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
      return {expected: [disk1], input: join(d, 'server-flat.vmdk'), loader: 'loader:vmdk', names: ['server'], subformat: 'monolithicFlat'}
    },
    'VMDK 2-level snapshot chain (flattened)': () => {
      const d = own('vmdk-chain')
      convertFixture(disk1, join(d, 'base.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'base-000001.vmdk'], {cwd: d})
      writePattern(join(d, 'base-000001.vmdk'), 'vmdk', [{length: MiB, offset: 20 * MiB, pattern: 0xc1}])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base-000001.vmdk', '-F', 'vmdk', 'base-000002.vmdk'], {cwd: d})
      writePattern(join(d, 'base-000002.vmdk'), 'vmdk', [{length: 64 * 1024, offset: 20 * MiB + 4096, pattern: 0xc2}])
      const merged = join(dir, 'chain-merged.raw')
      copyFileSync(disk1, merged)
      writePattern(merged, 'raw', [{length: MiB, offset: 20 * MiB, pattern: 0xc1}, {length: 64 * 1024, offset: 20 * MiB + 4096, pattern: 0xc2}])
      return {expected: [merged], input: join(d, 'base-000002.vmdk'), loader: 'loader:vmdk', names: ['base-000002']}
    },
    'OVA with two streamOptimized disks and a SHA256 manifest': () => {
      const d = own('ova')
      convertFixture(disk1, join(d, 'web01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
      convertFixture(disk2, join(d, 'web01-disk2.vmdk'), 'vmdk', ['subformat=streamOptimized'])
      writeFileSync(join(d, 'web01.ovf'), ovfText('web01', [{href: 'web01-disk1.vmdk', id: 'vmdisk1'}, {href: 'web01-disk2.vmdk', id: 'vmdisk2'}]))
      const members = ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk']
      writeFileSync(join(d, 'web01.mf'), manifestFor(d, members, 'SHA256'))
      execFileSync('tar', ['-cf', join(d, 'web01.ova'), '--format=ustar', ...members, 'web01.mf'], {cwd: d})
      return {expected: [disk1, disk2], input: join(d, 'web01.ova'), loader: 'loader:ova', names: ['web01-disk1', 'web01-disk2']}
    },
    'gzip-compressed OVA': () => {
      const d = own('ova-gz')
      convertFixture(disk1, join(d, 'db.vmdk'), 'vmdk', ['subformat=streamOptimized'])
      writeFileSync(join(d, 'db.ovf'), ovfText('db', [{href: 'db.vmdk', id: 'vmdisk1'}]))
      writeFileSync(join(d, 'db.mf'), manifestFor(d, ['db.ovf', 'db.vmdk'], 'SHA1'))
      execFileSync('sh', ['-c', 'tar -cf - db.ovf db.vmdk db.mf | gzip -1 > db.ova'], {cwd: d})
      return {expected: [disk1], input: join(d, 'db.ova'), loader: 'loader:ova', names: ['db']}
    },
    'OVF directory': () => {
      const d = own('ovf-dir')
      convertFixture(disk1, join(d, 'app-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
      writeFileSync(join(d, 'app.ovf'), ovfText('app', [{href: 'app-disk1.vmdk', id: 'vmdisk1'}]))
      return {expected: [disk1], input: d, loader: 'loader:ovf', names: ['app']}
    },
    'VHD fixed': () => {
      const d = own('vhd-fixed')
      return {expected: [disk1], input: convertFixture(disk1, join(d, 'disk.vhd'), 'vpc', ['subformat=fixed,force_size=on']), loader: 'loader:vhd', names: ['disk'], subformat: 'fixed'}
    },
    'VHD dynamic': () => {
      const d = own('vhd-dynamic')
      return {expected: [disk1], input: convertFixture(disk1, join(d, 'disk.vhd'), 'vpc', ['subformat=dynamic,force_size=on']), loader: 'loader:vhd', names: ['disk'], subformat: 'dynamic'}
    },
    VHDX: () => {
      const d = own('vhdx')
      return {expected: [disk1], input: convertFixture(disk1, join(d, 'disk.vhdx'), 'vhdx'), loader: 'loader:vhdx', names: ['disk']}
    },
    'AVHDX differencing child (flattened onto its parent)': async () => {
      const d = own('avhdx')
      convertFixture(disk1, join(d, 'base.vhdx'), 'vhdx', ['block_size=1M'])
      const template = join(dir, 'avhdx-template.vhdx')
      execFileSync('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', template, String(FIXTURE_SIZE)])
      const data = Buffer.alloc(3 * MiB + 512, 0xd4)
      await makeDifferencingVhdx({out: join(d, 'base_1A2B.avhdx'), parentLinkage: (await readVhdxLayout(join(d, 'base.vhdx'))).dataWriteGuid, parentRelativePath: 'base.vhdx', template, writes: [{data, offset: 9 * MiB}]})
      const merged = join(dir, 'avhdx-merged.raw')
      copyFileSync(disk1, merged)
      writePattern(merged, 'raw', [{length: data.length, offset: 9 * MiB, pattern: 0xd4}])
      return {expected: [merged], input: join(d, 'base_1A2B.avhdx'), loader: 'loader:vhdx', names: ['base_1A2B'], subformat: 'differencing'}
    },
    'qcow2': () => {
      const d = own('qcow2')
      return {expected: [disk1], input: convertFixture(disk1, join(d, 'disk.qcow2'), 'qcow2'), loader: 'loader:qcow2', names: ['disk']}
    },
    'raw .img': () => {
      const d = own('raw-img')
      const input = join(d, 'disk.img')
      execFileSync('cp', ['--sparse=always', disk1, input])
      return {expected: [disk1], input, loader: 'loader:raw', names: ['disk']}
    },
    'AMI export tarball holding a raw disk': () => {
      const d = own('ami-raw')
      execFileSync('cp', ['--sparse=always', disk1, join(d, 'export-ami-0abc.raw')])
      execFileSync('tar', ['-cf', join(d, 'export-ami-0abc.tar'), 'export-ami-0abc.raw'], {cwd: d})
      return {expected: [disk1], input: join(d, 'export-ami-0abc.tar'), loader: 'loader:ami', names: ['export-ami-0abc']}
    },
    'AMI export tarball holding a VMDK': () => {
      const d = own('ami-vmdk')
      convertFixture(disk1, join(d, 'export-i-0123.vmdk'), 'vmdk', ['subformat=streamOptimized'])
      execFileSync('tar', ['-cf', join(d, 'export-i-0123.tar'), 'export-i-0123.vmdk'], {cwd: d})
      return {expected: [disk1], input: join(d, 'export-i-0123.tar'), loader: 'loader:ami', names: ['export-i-0123']}
    },
  }

  for (const [name, build] of Object.entries(fixtures)) {
    it(name, async () => {
      const fixture = await build()
      const inputDir = statSync(fixture.input).isDirectory() ? fixture.input : join(fixture.input, '..')
      const before = fingerprint(inputDir)
      for (const format of ['qcow2', 'raw'] as const) {
        const out = join(dir, 'out', basename(inputDir), format)
        const result = await runCli(['convert', fixture.input, '--output-dir', out, '--format', format, '--json'])
        assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
        const json = result.json
        assert.equal(json.input.loader, fixture.loader)
        if (fixture.subformat) assert.equal(json.input.subformat, fixture.subformat)
        assert.deepEqual(json.outputs.map((o: {path: string}) => basename(o.path)), fixture.names.map((n) => `${n}.${format}`))
        for (const [index, output] of json.outputs.entries()) {
          assert.equal(output.virtual_size, FIXTURE_SIZE)
          assert.ok(sameContent(fixture.expected[index]!, 'raw', output.path, format), `${output.path} differs from its expected content`)
        }
        assert.deepEqual(leftovers(out).filter((f) => f.endsWith('.part') || f.startsWith('.hyper2kvm')), [])
      }
      assert.deepEqual(fingerprint(inputDir), before, 'no input file changed')
    })
  }
})
