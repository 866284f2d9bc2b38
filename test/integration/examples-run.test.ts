import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {cpSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {ovfText} from '../helpers/ovf-fixtures.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * The files in examples/ are what users copy: they must run, not only validate. The VMs they name are
 * made here from the patterned test disk (blank disks: no guest to fix, so no appliance is started).
 */
describe('examples/ run as shipped', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  let expected: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-examples-'))
    cpSync(new URL('../../examples', import.meta.url).pathname, join(dir, 'examples'), {recursive: true})
    cpSync(new URL('../../schemas', import.meta.url).pathname, join(dir, 'schemas'), {recursive: true})
    const vms = join(dir, 'examples', 'vms')
    expected = makePatternedRaw(join(dir, 'expected.raw'))
    mkdirSync(join(vms, 'web01'), {recursive: true})
    convertFixture(expected, join(vms, 'web01', 'web01.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    mkdirSync(join(vms, 'db01'))
    convertFixture(expected, join(vms, 'db01', 'db01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(vms, 'db01', 'db01.ovf'), ovfText('db01', [{href: 'db01-disk1.vmdk', id: 'vmdisk1'}]))
    execFileSync('tar', ['-cf', 'db01.ova', 'db01.ovf', 'db01-disk1.vmdk'], {cwd: join(vms, 'db01')})
    mkdirSync(join(vms, 'legacy'))
    convertFixture(expected, join(vms, 'legacy', 'legacy.vhdx'), 'vhdx')
  })
  after(() => cleanup())
  beforeEach(() => rmSync(join(dir, 'examples', 'out'), {force: true, recursive: true}))

  it('job-config-simple.yaml through convert --job', async () => {
    const result = await runCli(['convert', '--job', join(dir, 'examples', 'job-config-simple.yaml'), '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.equal(result.json.outputs[0].path, join(dir, 'examples', 'out', 'web01.qcow2'))
    assert.ok(sameContent(expected, 'raw', result.json.outputs[0].path, 'qcow2'))
  })

  it('job-config-batch.yaml through batch (the boot test of its legacy job needs a real guest: switched off here)', async () => {
    const batch = join(dir, 'examples', 'job-config-batch.yaml')
    writeFileSync(batch, readFileSync(batch, 'utf8').replace('verify_boot: true', 'verify_boot: false'))
    const result = await runCli(['batch', batch, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.deepEqual(result.json.jobs.map((j: {name: string; status: string}) => [j.name, j.status]), [['web01', 'succeeded'], ['db01', 'succeeded'], ['legacy', 'succeeded']])
    const outputs = result.json.jobs.map((j: {outputs: string[]}) => j.outputs[0])
    assert.deepEqual(outputs, ['web01.qcow2', 'db01.raw', 'legacy.qcow2'].map((f) => join(dir, 'examples', 'out', f)))
    for (const output of outputs) assert.ok(sameContent(expected, 'raw', output, output.endsWith('.raw') ? 'raw' : 'qcow2'), output)
  })

  it('manifest.json through batch, with its report next to the manifest', async () => {
    const manifest = join(dir, 'examples', 'manifest.json')
    const result = await runCli(['batch', manifest, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const report = JSON.parse(readFileSync(join(dir, 'examples', 'manifest.report.json'), 'utf8'))
    assert.ok(JSON.stringify(report).includes('web01'))
  })
})
