import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {basename, extname, join} from 'node:path'

import {type OvfHardwareOptions, SECOND_REGIONS, manifestFor, ovfText} from '../helpers/ovf-fixtures.js'
import {FIXTURE_SIZE, convertFixture, makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** The OVF name of the hostile case: it tries to close <name> and add elements of its own. */
const HOSTILE_NAME = `evil</name><on_crash>preserve</on_crash><name>x&amp;'"`
/** A MAC address followed by a second <mac> element: refused by the loader, so nothing of it may be kept. */
const HOSTILE_MAC = `00:50:56:ab:cd:03'/><mac address='de:ad:be:ef:00:01`

interface DomainCase {
  /** The VM: an OVA built from ovfText with these options, or a plain VMDK. */
  input: {ova: {name: string} & OvfHardwareOptions} | {vmdk: string}
  /** convert flags beside the input and --output-dir/--json; `job` runs through `convert --job` with these keys instead. */
  flags?: string[]
  job?: Record<string, unknown>
  expect: {
    cpus: number
    memoryMiB: number
    firmware: 'bios' | 'efi'
    /** Output file names in disk order; their extension is the format libvirt must be told. */
    disks: string[]
    /** MACs the domain gives its NICs (undefined: libvirt generates one). */
    macs: Array<string | undefined>
    /** Text that must not appear anywhere in the XML we wrote. */
    absent?: string[]
    warnings?: string[]
    /** The <title> libvirt reads back (the source's VM name, escaped on the way in). */
    title?: string
  }
}

const CASES: Record<string, DomainCase> = {
  'OVA, UEFI, MACs kept (job file: emit: [libvirt], keep_macs: true)': {
    expect: {cpus: 2, disks: ['web01-disk1.qcow2', 'web01-disk2.qcow2'], firmware: 'efi', macs: ['00:50:56:ab:cd:01', '00:50:56:ab:cd:02'], memoryMiB: 4096},
    input: {ova: {firmware: 'efi', name: 'web01', nics: [{address: '00:50:56:AB:CD:01'}, {address: '00-50-56-ab-cd-02'}]}},
    job: {emit: ['libvirt'], keep_macs: true},
  },
  'OVA, BIOS, raw outputs, MACs not kept': {
    expect: {absent: ['00:50:56:ab:cd:01', '<mac'], cpus: 2, disks: ['web02-disk1.raw', 'web02-disk2.raw'], firmware: 'bios', macs: [undefined], memoryMiB: 4096},
    flags: ['--emit', 'libvirt', '--format', 'raw'],
    input: {ova: {firmware: 'bios', name: 'web02', nics: [{address: '00:50:56:ab:cd:01'}]}},
  },
  'OVA with a hostile VM name and NIC address, --keep-macs': {
    expect: {
      absent: ['</name><on_crash>', 'de:ad:be:ef', '00:50:56:ab:cd:03', "'/>", '<mac'],
      cpus: 2,
      disks: [],
      firmware: 'efi',
      macs: [undefined],
      memoryMiB: 4096,
      title: HOSTILE_NAME,
      warnings: ['MAC_NOT_KEPT'],
    },
    flags: ['--emit', 'libvirt', '--keep-macs'],
    input: {ova: {firmware: 'efi', name: HOSTILE_NAME, nics: [{address: HOSTILE_MAC}]}},
  },
  'a plain VMDK: defaults (2 vCPUs, 2 GiB, one NIC, BIOS), named by --name': {
    expect: {cpus: 2, disks: ['db01.qcow2'], firmware: 'bios', macs: [undefined], memoryMiB: 2048, warnings: ['MAC_NOT_KEPT']},
    flags: ['--emit', 'libvirt', '--name', 'db01', '--keep-macs'],
    input: {vmdk: 'disk.vmdk'},
  },
}

/** `virsh -c test:///default` (libvirt's own in-process test driver): define the file, then read the domain back. */
function defineAndDump(file: string, name: string): string {
  return execFileSync('virsh', ['-c', 'test:///default', `define '${file}'; dumpxml '${name}'`], {encoding: 'utf8'})
}

const all = (xml: string, pattern: RegExp): string[] => [...xml.matchAll(pattern)].map((match) => match[1] ?? '')
const unescape = (text: string): string => text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&')

/**
 * `convert --emit libvirt` on real inputs (tiny data disks: no guest, so the hardware comes from the OVF or
 * the defaults): the domain validates against libvirt's schema (virt-xml-validate), libvirt's test driver
 * defines it, and what it reads back has the disks, NICs, MACs and firmware we meant.
 */
describe('--emit libvirt: a libvirt domain beside the outputs (virt-xml-validate, virsh test:///default)', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  let raw1: string
  let raw2: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-libvirt-'))
    raw1 = makePatternedRaw(join(dir, 'disk1.raw'))
    raw2 = makePatternedRaw(join(dir, 'disk2.raw'), FIXTURE_SIZE, SECOND_REGIONS)
  })
  after(() => cleanup())

  /** An OVA of two streamOptimized disks with a SHA256 manifest, as ovftool writes it. */
  function makeOva(where: string, options: {name: string} & OvfHardwareOptions): string {
    mkdirSync(where, {recursive: true})
    const disks = [
      {href: 'vm-disk1.vmdk', id: 'vmdisk1'},
      {href: 'vm-disk2.vmdk', id: 'vmdisk2'},
    ]
    convertFixture(raw1, join(where, 'vm-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    convertFixture(raw2, join(where, 'vm-disk2.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(where, 'vm.ovf'), ovfText(options.name, disks, options))
    writeFileSync(join(where, 'vm.mf'), manifestFor(where, ['vm.ovf', 'vm-disk1.vmdk', 'vm-disk2.vmdk'], 'SHA256'))
    execFileSync('tar', ['--format=ustar', '-cf', 'vm.ova', 'vm.ovf', 'vm-disk1.vmdk', 'vm-disk2.vmdk', 'vm.mf'], {cwd: where})
    return join(where, 'vm.ova')
  }

  let caseNumber = 0
  for (const [title, domainCase] of Object.entries(CASES)) {
    it(title, async () => {
      const where = join(dir, `case-${++caseNumber}`)
      mkdirSync(where)
      const input = 'ova' in domainCase.input ? makeOva(join(where, 'in'), domainCase.input.ova) : convertFixture(raw1, join(where, domainCase.input.vmdk), 'vmdk', ['subformat=monolithicSparse'])
      const out = join(where, 'out')
      let args = ['convert', input, ...(domainCase.flags ?? []), '--output-dir', out, '--json']
      if (domainCase.job) {
        const jobFile = join(where, 'job.json')
        writeFileSync(jobFile, JSON.stringify({input, output_dir: out, ...domainCase.job}))
        args = ['convert', '--job', jobFile, '--json']
      }
      const result = await runCli(args)
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
      const json = result.json
      const outputs: string[] = json.outputs.map((output: {path: string}) => output.path)
      const stem = basename(outputs[0]!, extname(outputs[0]!)).replace(/-disk1$/, '')
      const file = join(out, `${stem}.xml`)
      assert.equal(json.libvirt_xml, file)
      assert.equal(JSON.parse(readFileSync(json.report, 'utf8')).libvirt_xml, file, 'the report lists the domain too')
      assert.equal(statSync(file).mode & 0o777, 0o644)
      const ours = readFileSync(file, 'utf8')
      for (const text of domainCase.expect.absent ?? []) assert.ok(!ours.includes(text), `"${text}" in the XML:\n${ours}`)
      for (const code of domainCase.expect.warnings ?? []) assert.ok(json.warnings.some((warning: {code: string}) => warning.code === code), JSON.stringify(json.warnings))
      assert.deepEqual(all(ours, /<mac address="([^"]*)"/g), domainCase.expect.macs.filter((mac) => mac !== undefined), 'only kept MACs are written')

      // libvirt's schema, then libvirt itself.
      const validation = spawnSync('virt-xml-validate', [file, 'domain'], {encoding: 'utf8'})
      assert.equal(validation.status, 0, `${validation.stdout}${validation.stderr}\n${ours}`)
      assert.match(validation.stdout + validation.stderr, /validates/)
      const dumped = defineAndDump(file, stem)
      assert.deepEqual(all(dumped, /<name>([^<]*)<\/name>/g), [stem])
      assert.deepEqual(all(dumped, /<type arch='x86_64' machine='([^']*)'>hvm<\/type>/g), ['q35'])
      assert.deepEqual(all(dumped, /<vcpu placement='static'>(\d+)<\/vcpu>/g).map(Number), [domainCase.expect.cpus])
      assert.deepEqual(all(dumped, /<memory unit='KiB'>(\d+)<\/memory>/g).map(Number), [domainCase.expect.memoryMiB * 1024])
      const expectedDisks = domainCase.expect.disks.length > 0 ? domainCase.expect.disks.map((name) => join(out, name)) : outputs
      assert.deepEqual(expectedDisks, outputs, 'the outputs the job lists')
      assert.deepEqual(all(dumped, /<source file='([^']*)'\/>/g).map(unescape), expectedDisks, 'virtio disks on the outputs, in disk order, by absolute path')
      assert.deepEqual(all(dumped, /<driver name='qemu' type='([^']*)'/g), expectedDisks.map((path) => extname(path).slice(1)))
      assert.deepEqual(all(dumped, /<target dev='(vd[a-z]+)' bus='virtio'\/>/g), expectedDisks.map((_, index) => `vd${String.fromCharCode(97 + index)}`))
      assert.equal(all(dumped, /<boot order='(\d)'\/>/g).join(), '1', 'the first disk boots')
      const macs = all(dumped, /<mac address='([^']*)'\/>/g)
      assert.equal(macs.length, domainCase.expect.macs.length, 'one NIC per source NIC')
      domainCase.expect.macs.forEach((mac, index) => {
        if (mac === undefined) assert.match(macs[index] ?? '', /^52:54:00:/, 'libvirt generated it')
        else assert.equal(macs[index], mac)
      })
      assert.equal(all(dumped, /<model type='(virtio)'\/>/g).length, domainCase.expect.macs.length, 'virtio NICs')
      assert.equal(all(dumped, /<source network='(default)'\/>/g).length, domainCase.expect.macs.length)
      if (domainCase.expect.firmware === 'efi') {
        assert.deepEqual(all(dumped, /<loader readonly='yes' secure='no' type='pflash'>([^<]*)<\/loader>/g), ['/usr/share/OVMF/OVMF_CODE_4M.fd'])
        assert.deepEqual(all(dumped, /<nvram template='([^']*)'/g), ['/usr/share/OVMF/OVMF_VARS_4M.fd'])
      } else {
        assert.ok(!dumped.includes('<loader') && !dumped.includes('<nvram'), dumped)
      }
      for (const device of ["<target type='virtio' name='org.qemu.guest_agent.0'/>", "<console type='pty'>", "<memballoon model='virtio'/>", "<rng model='virtio'>", "<model type='vga'", "<listen type='address' address='127.0.0.1'/>"]) {
        assert.ok(dumped.includes(device), `${device} missing:\n${dumped}`)
      }
      if (domainCase.expect.title !== undefined) assert.deepEqual(all(dumped, /<title>([^<]*)<\/title>/g).map(unescape), [domainCase.expect.title], 'the name arrives intact, as text')
      else assert.ok(!dumped.includes('<title>'), 'no title when the name is the domain name')
      if (domainCase.expect.warnings?.includes('MAC_NOT_KEPT') && 'ova' in domainCase.input) {
        assert.ok(json.input.notes.some((note: string) => /NIC 1: .*not kept/.test(note)), JSON.stringify(json.input.notes))
        assert.ok(!JSON.stringify(json).includes('de:ad:be:ef'), 'the refused address is quoted nowhere in the result')
      }
    })
  }

  it('--verify-boot boots the domain\'s hardware: q35, the kept MAC on a virtio NIC (a data-only UEFI VM stops at "no bootable device")', async () => {
    const where = join(dir, 'boot')
    const input = makeOva(join(where, 'in'), {firmware: 'efi', name: 'app01', nics: [{address: '00:50:56:ab:cd:07'}]})
    const result = await runCli(['convert', input, '--emit', 'libvirt', '--keep-macs', '--verify-boot', '--boot-timeout', '120', '--output-dir', join(where, 'out'), '--json'])
    assert.notEqual(result.code, 0)
    const error = result.json?.error
    assert.equal(error?.code, 'H2K_BOOT_FAILED', result.stdout + result.stderr)
    assert.equal(error.details.reason, 'no-boot-device', JSON.stringify(error.details))
    assert.equal(error.details.machine, 'q35')
    assert.equal(error.details.mac, '00:50:56:ab:cd:07')
    assert.ok(!existsSync(join(where, 'out', 'app01.xml')), 'a failed job leaves no domain behind')
  })

  it('batch: emit: [libvirt] at the top level gives every job its domain, listed per job in batch --json', async () => {
    const where = join(dir, 'batch')
    mkdirSync(where)
    const a = convertFixture(raw1, join(where, 'a.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
    const b = convertFixture(raw2, join(where, 'b.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
    const jobFile = join(where, 'batch.json')
    writeFileSync(jobFile, JSON.stringify({emit: ['libvirt'], jobs: [{input: a}, {input: b, output_format: 'raw'}], output_dir: join(where, 'out')}))
    const result = await runCli(['batch', jobFile, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.deepEqual(result.json.jobs.map((job: {libvirt_xml?: string}) => job.libvirt_xml), [join(where, 'out', 'a.xml'), join(where, 'out', 'b.xml')])
    assert.match(readFileSync(join(where, 'out', 'b.xml'), 'utf8'), /<driver discard="unmap" name="qemu" type="raw"\/>\n\s*<source file="[^"]*\/b\.raw"\/>/)
  })

  it('an existing <name>.xml refuses the job before anything is written (H2K_OUTPUT_EXISTS); --overwrite replaces it; no --emit, no XML', async () => {
    const where = join(dir, 'exists')
    mkdirSync(where)
    const input = convertFixture(raw1, join(where, 'app.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
    const out = join(where, 'out')
    mkdirSync(out)
    writeFileSync(join(out, 'app.xml'), 'not ours\n')
    const refused = await runCli(['convert', input, '--emit', 'libvirt', '--output-dir', out, '--json'])
    assert.notEqual(refused.code, 0)
    assert.equal(refused.json?.error?.code ?? refused.json?.code, 'H2K_OUTPUT_EXISTS', refused.stdout + refused.stderr)
    assert.equal(readFileSync(join(out, 'app.xml'), 'utf8'), 'not ours\n')
    assert.ok(!existsSync(join(out, 'app.qcow2')) && !existsSync(join(out, 'app.report.json')))

    const plain = await runCli(['convert', input, '--output-dir', out, '--json'])
    assert.equal(plain.code, 0, plain.stdout + plain.stderr)
    assert.equal(plain.json.libvirt_xml, undefined)
    assert.equal(readFileSync(join(out, 'app.xml'), 'utf8'), 'not ours\n', 'without --emit the XML is not ours to touch')

    const replaced = await runCli(['convert', input, '--emit', 'libvirt', '--overwrite', '--output-dir', out, '--json'])
    assert.equal(replaced.code, 0, replaced.stdout + replaced.stderr)
    assert.match(readFileSync(join(out, 'app.xml'), 'utf8'), /^<domain type="kvm">/)
  })
})
