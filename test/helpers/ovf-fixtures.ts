import {execFileSync} from 'node:child_process'

import {FIXTURE_REGIONS} from './patterned-image.js'

/** The second disk holds other bytes at other places, so swapped disks cannot compare equal. */
export const SECOND_REGIONS = FIXTURE_REGIONS.map((region, index) => ({...region, offset: region.offset + (index === FIXTURE_REGIONS.length - 1 ? 0 : 8192), pattern: region.pattern + 0x80}))

export interface OvfDiskEntry {
  id: string
  href: string
  compression?: string
}

export interface OvfHardwareOptions {
  /** Default efi (vmw:Config firmware). */
  firmware?: 'bios' | 'efi'
  /** The NICs (default one, without an address); `address` is written as rasd:Address, escaped for XML. */
  nics?: Array<{address?: string}>
}

/** Text as XML character data (the descriptor's own escaping: hostile names and addresses are escaped here, as an exporter would). */
const xmlText = (value: string): string => value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;')

/** An ovftool-style descriptor; the disks are listed in reverse in DiskSection so only the SCSI slots give the right order. */
export function ovfText(rawName: string, disks: OvfDiskEntry[], options: OvfHardwareOptions = {}): string {
  const name = xmlText(rawName)
  const nics = (options.nics ?? [{}]).map(
    (nic, index) =>
      `<Item>${nic.address === undefined ? '' : `<rasd:Address>${xmlText(nic.address)}</rasd:Address>`}<rasd:AddressOnParent>${7 + index}</rasd:AddressOnParent><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter ${index + 1}</rasd:ElementName><rasd:InstanceID>${20 + index}</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>`,
  )
  const files = disks.map((disk, index) => `<File ovf:href="${disk.href}" ovf:id="file${index + 1}"${disk.compression ? ` ovf:compression="${disk.compression}"` : ''}/>`)
  const diskSection = disks.map((disk, index) => `<Disk ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="${disk.id}" ovf:fileRef="file${index + 1}"/>`).reverse()
  const items = disks.map(
    (disk, index) => `<Item><rasd:AddressOnParent>${index}</rasd:AddressOnParent><rasd:ElementName>Hard disk ${index + 1}</rasd:ElementName><rasd:HostResource>ovf:/disk/${disk.id}</rasd:HostResource><rasd:InstanceID>${10 + index}</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>`,
  )
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>${files.join('')}</References>
  <DiskSection><Info>Virtual disk information</Info>${diskSection.join('')}</DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"><Description>VM Network</Description></Network></NetworkSection>
  <VirtualSystem ovf:id="${name}">
    <Info>A virtual machine</Info>
    <Name>${name}</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest"><Info>OS</Info><Description>Ubuntu Linux (64-bit)</Description></OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>2 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>4096MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>4096</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      ${items.reverse().join('\n      ')}
      ${nics.join('\n      ')}
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="${options.firmware ?? 'efi'}"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`
}

/** A manifest as ovftool writes it, from sha256sum/sha1sum output. */
export function manifestFor(dir: string, files: string[], algorithm: 'SHA1' | 'SHA256'): string {
  const tool = algorithm === 'SHA1' ? 'sha1sum' : 'sha256sum'
  const out = execFileSync(tool, files, {cwd: dir, encoding: 'utf8'})
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [hex, name] = line.split(/\s+\*?/)
      return `${algorithm}(${name})= ${hex}`
    })
    .join('\n')
    .concat('\n')
}
