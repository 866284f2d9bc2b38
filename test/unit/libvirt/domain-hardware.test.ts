import assert from 'node:assert/strict'

import type {H2KError, Source, VmMetadata} from '@hyper2kvm/plugin-api'
import {domainHardware} from '../../../src/libvirt/domain-hardware.js'
import {domainXml, virtioDiskName} from '../../../src/libvirt/domain-xml.js'
import {element, escapeXml, renderXml} from '../../../src/libvirt/xml-element.js'
import {defaultJobSettings} from '../../../src/stages/job-defaults.js'

const source = (vm?: VmMetadata, name = 'web01'): Source => ({disks: [], format: 'ova', input: '/in/web01.ova', name, ...(vm === undefined ? {} : {vm})})
const job = (keepMacs = false) => ({...defaultJobSettings('/in/web01.ova', '/out'), keepMacs})
const codes = (warnings: Array<{code: string}>): string[] => warnings.map((warning) => warning.code)

describe('libvirt domain: the hardware from untrusted source facts', () => {
  it('takes the OVF facts that pass, MACs only with keep_macs', () => {
    const vm: VmMetadata = {cpus: 4, firmware: 'efi', memoryMiB: 8192, name: 'web01 & friends', nics: [{mac: '00:50:56:ab:cd:01'}, {}]}
    const kept = domainHardware({job: job(true), source: source(vm)})
    assert.deepEqual(kept.hardware, {clock: 'utc', cpus: 4, firmware: 'efi', machine: 'q35', memoryMiB: 8192, name: 'web01', nics: [{mac: '00:50:56:ab:cd:01'}, {}], title: 'web01 & friends'})
    assert.deepEqual(codes(kept.warnings), ['MAC_NOT_KEPT'], 'NIC 2 has no MAC to keep')
    const fresh = domainHardware({job: job(false), source: source(vm)})
    assert.deepEqual(fresh.hardware.nics, [{}, {}])
    assert.deepEqual(fresh.warnings, [])
  })

  it('uses defaults (2 vCPUs, 2 GiB, one NIC, BIOS, no title) when the source describes no hardware', () => {
    const {hardware, warnings} = domainHardware({job: job(), source: source(undefined, 'disk')})
    assert.deepEqual(hardware, {clock: 'utc', cpus: 2, firmware: 'bios', machine: 'q35', memoryMiB: 2048, name: 'disk', nics: [{}]})
    assert.deepEqual(warnings, [])
    assert.deepEqual(domainHardware({job: job(), source: source({diskOrder: ['export.raw']})}).hardware.nics, [{}], 'an AMI states disks, not NICs')
    assert.deepEqual(domainHardware({job: job(), source: source({nics: []})}).hardware.nics, [], 'an OVF VM without NICs stays without')
  })

  it('refuses out-of-range counts, extra NICs, repeated or malformed MACs, odd firmware and titles with line breaks', () => {
    const nics = Array.from({length: 20}, (_, index) => ({mac: index === 1 ? '00:50:56:ab:cd:00' : index === 2 ? '01:00:5e:00:00:01' : index === 3 ? '00:50:56:ab:cd:00,x' : `00:50:56:ab:cd:${(index + 16).toString(16)}`}))
    const vm = {cpus: 100_000, firmware: 'uefi' as 'efi', memoryMiB: 1, name: 'two\nlines', nics}
    const {hardware, warnings} = domainHardware({job: job(true), source: source(vm)})
    assert.equal(hardware.cpus, 2)
    assert.equal(hardware.memoryMiB, 2048)
    assert.equal(hardware.firmware, 'bios')
    assert.equal(hardware.title, undefined)
    assert.equal(hardware.nics.length, 16)
    assert.deepEqual(hardware.nics.slice(0, 4), [{mac: '00:50:56:ab:cd:10'}, {mac: '00:50:56:ab:cd:00'}, {}, {}])
    assert.deepEqual(codes(warnings).sort(), ['HARDWARE_DEFAULTED', 'HARDWARE_DEFAULTED', 'HARDWARE_DEFAULTED', 'MAC_NOT_KEPT', 'MAC_NOT_KEPT'])
    for (const warning of warnings) assert.ok(!warning.message.includes('100000') && !warning.message.includes('01:00:5e') && !warning.message.includes(',x'), warning.message)
    const repeated = domainHardware({job: job(true), source: source({nics: [{mac: '00:50:56:ab:cd:01'}, {mac: '00:50:56:ab:cd:01'}]})})
    assert.deepEqual(repeated.hardware.nics, [{mac: '00:50:56:ab:cd:01'}, {}])
    assert.deepEqual(codes(repeated.warnings), ['MAC_NOT_KEPT'])
  })

  it('keeps a Windows guest\'s clock in local time, and an inspected firmware wins over the OVF hint', () => {
    const {hardware} = domainHardware({inspection: {firmware: 'efi', fstab: [], kernels: [], luks: false, lvm: false, mountpoints: {}, os: 'windows', partitioned: true, raid: false, risks: []}, job: job(), source: source({firmware: 'bios'})})
    assert.equal(hardware.clock, 'localtime')
    assert.equal(hardware.firmware, 'efi')
  })
})

describe('libvirt domain: the XML writer', () => {
  it('escapes every value, in text and attributes, so none can end its element or attribute', () => {
    const xml = renderXml(element('domain', {a: `x"/><b c='`}, [element('name', {}, `</name><x>&amp;'"`)]))
    assert.equal(xml, `<domain a="x&quot;/&gt;&lt;b c=&apos;">\n  <name>&lt;/name&gt;&lt;x&gt;&amp;amp;&apos;&quot;</name>\n</domain>\n`)
  })

  it('refuses what XML cannot hold (control characters, lone surrogates), never quoting it, and names that are not ours', () => {
    for (const value of ['a\u0000b', 'esc\u001b[31m', 'x\uD800', '\uFFFE']) {
      assert.throws(() => escapeXml(value), (error: H2KError) => error.code === 'H2K_OUTPUT_FAILED' && !error.message.includes(value))
    }
    assert.equal(escapeXml('tab\tnew\nline é 😀'), 'tab\tnew\nline é 😀')
    assert.throws(() => renderXml(element('a b')), (error: H2KError) => error.code === 'H2K_INTERNAL')
  })

  it('names virtio disks as the kernel does: vda … vdz, vdaa', () => {
    assert.deepEqual([0, 1, 25, 26, 27, 701, 702].map(virtioDiskName), ['vda', 'vdb', 'vdz', 'vdaa', 'vdab', 'vdzz', 'vdaaa'])
  })

  it('refuses relative disk paths and UEFI without firmware paths', () => {
    const hardware = domainHardware({job: job(), source: source()}).hardware
    assert.throws(() => domainXml({disks: [{format: 'qcow2', path: 'out/web01.qcow2'}], hardware}), /absolute path/)
    assert.throws(() => domainXml({disks: [{format: 'qcow2', path: '/out/web01.qcow2'}], hardware: {...hardware, firmware: 'efi'}}), /OVMF/)
    assert.match(domainXml({disks: [{format: 'qcow2', path: '/out/web01.qcow2'}], hardware: {...hardware, firmware: 'efi'}, ovmf: {combined: '/usr/share/ovmf/OVMF.fd'}}), /<loader readonly="yes" type="rom">\/usr\/share\/ovmf\/OVMF.fd<\/loader>/)
  })
})
