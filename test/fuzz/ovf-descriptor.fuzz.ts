// The OVF descriptor reader (well-formedness check, XML parse, References/DiskSection/hardware) and the OVF probe.
import {looksLikeOvf, parseOvfDescriptor} from '../../plugins/ovf/src/ovf-descriptor.js'
import {h2kRefusal} from './engine/refusal.js'
import type {FuzzTarget} from './engine/target.js'

export const target: FuzzTarget = {
  run(data) {
    const xml = data.toString('utf8')
    looksLikeOvf(xml)
    parseOvfDescriptor(xml, 'fuzz.ovf')
  },
  refusalCode: h2kRefusal,
  alsoCover: ['fast-xml-parser'],
  maxLength: 32 * 1024,
  dictionary: [
    '<Envelope>', '</Envelope>', '<References>', '<File ovf:href="disk1.vmdk" ovf:id="file1"/>', '<DiskSection>', '<Disk ovf:diskId="vmdisk1" ovf:fileRef="file1"/>',
    '<VirtualSystem ovf:id="vm">', '</VirtualSystem>', '<VirtualHardwareSection>', '<Item>', '</Item>', '<rasd:ResourceType>17</rasd:ResourceType>',
    '<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>', '<rasd:HostResource>ovf:/file/file1</rasd:HostResource>', '<rasd:Parent>3</rasd:Parent>',
    '<rasd:AddressOnParent>0</rasd:AddressOnParent>', '<rasd:VirtualQuantity>4096</rasd:VirtualQuantity>', '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>',
    'ovf:compression="gzip"', 'ovf:size="99999999999999999999"', ' xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"', '<![CDATA[', ']]>', '<!--', '-->',
    '&#x0;', '&#1114112;', '&amp;', '<?xml version="1.0"?>', '<!DOCTYPE', 'rasd:', 'ovf:',
  ],
}
