import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {FIXTURE_SIZE, convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('hyper2kvm convert (raw and qcow2 inputs, every output format)', () => {
  let dir: string
  let cleanup: () => void
  let expected: string
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    expected = makePatternedRaw(join(dir, 'expected.raw'))
  })
  after(() => cleanup())

  for (const format of ['qcow2', 'raw', 'vdi'] as const) {
    it(`raw → ${format} round-trips identically, with a --json result`, async () => {
      const out = join(dir, `out-raw-${format}`)
      const result = await runCli(['convert', expected, '--output-dir', out, '--format', format, '--verify', '--checksum', '--json'])
      assert.equal(result.code, 0, result.stderr)
      const json = result.json
      assert.equal(json.status, 'succeeded')
      assert.equal(json.input.loader, 'loader:raw')
      assert.equal(json.input.plugin, '@hyper2kvm/plugin-generic')
      assert.equal(json.outputs.length, 1)
      const output = json.outputs[0]
      assert.equal(output.path, join(out, `expected.${format}`))
      assert.equal(output.virtual_size, FIXTURE_SIZE)
      assert.equal(output.sha256, sha256(output.path))
      assert.ok(output.bytes_on_disk > 0 && output.bytes_on_disk < FIXTURE_SIZE, 'sparse output')
      assert.ok(sameContent(expected, 'raw', output.path, format))
      assert.deepEqual(json.verification.compare, [{output: output.path, result: 'identical'}])
      const ran = (status: string) => json.stages.filter((s: {status: string}) => s.status === status).map((s: {id: string}) => s.id)
      assert.deepEqual(ran('ok'), ['loader:raw', 'core:describe', 'converter:qemu-img', 'verifier:qemu-img-check', 'verifier:qemu-img-compare', 'core:commit'])
      // A blank data disk has nothing to inspect or fix: the appliance is not started, and the boot test was not asked for.
      assert.deepEqual(ran('skipped').sort(), ['fixer:fstab', 'fixer:grub', 'fixer:initramfs', 'fixer:network', 'fixer:vmware-tools', 'inspector:guest', 'verifier:boot'])
      assert.ok(json.warnings.some((w: {code: string}) => w.code === 'NO_OS_SIGNATURE'))
      assert.deepEqual(JSON.parse(readFileSync(json.report, 'utf8')).outputs, json.outputs)
      assert.deepEqual(leftovers(out).sort(), [`expected.${format}`, 'expected.report.json'].sort())
    })
  }

  it('qcow2 → qcow2 with zstd and zlib compression', async () => {
    const input = convertFixture(expected, join(dir, 'input.qcow2'), 'qcow2')
    for (const compression of ['zstd', 'zlib']) {
      const out = join(dir, `out-${compression}`)
      const result = await runCli(['convert', input, '-o', out, '--compression', compression, '--json'])
      assert.equal(result.code, 0, result.stderr)
      const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', result.json.outputs[0].path], {encoding: 'utf8'}))
      assert.equal(info['format-specific'].data['compression-type'], compression)
      assert.equal(result.json.outputs[0].compression, compression)
      assert.ok(sameContent(expected, 'raw', result.json.outputs[0].path, 'qcow2'))
    }
  })

  it('prints progress on stderr and a summary on stdout without --json', async () => {
    const out = join(dir, 'out-human')
    const result = await runCli(['convert', expected, '-o', out])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /\[convert\] converter:qemu-img .*100%/)
    assert.match(result.stdout, /expected\.qcow2 {2}qcow2, 64\.0 MiB virtual/)
    assert.match(result.stdout, /report: .*expected\.report\.json/)
  })

  it('flattens a qcow2 backing chain inside the input directory only with --allow-backing', async () => {
    const chainDir = join(dir, 'chain')
    mkdirSync(chainDir)
    convertFixture(expected, join(chainDir, 'base.qcow2'), 'qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(chainDir, 'top.qcow2')])
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 8M 1M', join(chainDir, 'top.qcow2')])
    const refused = await runCli(['convert', join(chainDir, 'top.qcow2'), '-o', join(dir, 'out-chain'), '--json'])
    assert.equal(refused.code, 4)
    assert.equal(refused.json.error.code, 'H2K_UNSAFE_BACKING')
    const allowed = await runCli(['convert', join(chainDir, 'top.qcow2'), '-o', join(dir, 'out-chain'), '--allow-backing', '--verify', '--json'])
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.deepEqual(allowed.json.input.notes, ['flattened a backing chain of 2 images'])
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', allowed.json.outputs[0].path], {encoding: 'utf8'}))
    assert.equal(info['backing-filename'], undefined)
    const merged = join(dir, 'merged.raw')
    execFileSync('cp', ['--sparse=always', expected, merged])
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 8M 1M', merged])
    assert.ok(sameContent(merged, 'raw', allowed.json.outputs[0].path, 'qcow2'))
  })

  it('lists the first-party plugins and their stages with `plugins --json`', async () => {
    const result = await runCli(['plugins', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const byName = new Map(result.json.plugins.map((p: {name: string}) => [p.name, p]))
    const generic = byName.get('@hyper2kvm/plugin-generic') as {stages: Array<{id: string}>; errors: unknown[]; type: string}
    assert.deepEqual(generic.stages.map((s) => s.id).sort(), ['loader:qcow2', 'loader:raw'])
    assert.deepEqual(generic.errors, [])
    assert.equal(generic.type, 'core')
    const host = byName.get('hyper2kvm') as {stages: Array<{id: string}>}
    assert.deepEqual(host.stages.map((s) => s.id), ['converter:qemu-img', 'verifier:qemu-img-check', 'verifier:qemu-img-compare', 'verifier:boot'])
    const linux = byName.get('@hyper2kvm/plugin-linux') as {stages: Array<{id: string}>}
    assert.deepEqual(linux.stages.map((s) => s.id), ['inspector:guest', 'fixer:fstab', 'fixer:grub', 'fixer:initramfs', 'fixer:network', 'fixer:vmware-tools'])
    for (const name of ['@hyper2kvm/plugin-vmware', '@hyper2kvm/plugin-ovf', '@hyper2kvm/plugin-hyperv', '@hyper2kvm/plugin-aws']) {
      const listed = byName.get(name) as {stages: unknown[]; errors: unknown[]} | undefined
      assert.ok(listed, `${name} is listed`)
      assert.deepEqual(listed.errors, [], `${name} registered without errors`)
      assert.ok(listed.stages.length > 0, `${name} contributes stages`)
    }
  })

  it('rejects flag combinations that make no sense, with a usage error', async () => {
    const result = await runCli(['convert', expected, '--format', 'raw', '--compress', '--json'])
    assert.equal(result.code, 2)
    assert.equal(result.json.error.code, 'H2K_USAGE')
    const unknown = await runCli(['convert', expected, '--frobnicate', '--json'])
    assert.equal(unknown.code, 2)
    assert.equal(unknown.json.error.code, 'H2K_USAGE')
    // Without --json too: the error is reported before any flag is parsed.
    const human = await runCli(['convert', expected, '--frobnicate'])
    assert.equal(human.code, 2)
    assert.match(human.stderr, /^Error H2K_USAGE: Nonexistent flag: --frobnicate/m)
    assert.ok(!existsSync(join(dir, 'out')))
  })

  it('writes nothing to stdout but the JSON object with --json', async () => {
    const result = await runCli(['convert', expected, '-o', join(dir, 'out-quiet'), '--json'])
    assert.equal(result.code, 0)
    assert.doesNotThrow(() => JSON.parse(result.stdout))
    writeFileSync(join(dir, 'stdout.json'), result.stdout)
  })
})
