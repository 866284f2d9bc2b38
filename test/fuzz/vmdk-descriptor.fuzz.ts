// The VMDK text descriptor parser (a separate .vmdk file, or the one embedded in a sparse extent).
import {descriptorCapacityBytes, parseVmdkDescriptor} from '@hyper2kvm/plugin-api'
import {h2kRefusal} from './engine/refusal.js'
import type {FuzzTarget} from './engine/target.js'

export const target: FuzzTarget = {
  run(data) {
    const descriptor = parseVmdkDescriptor(data.toString('latin1'), 'fuzz.vmdk')
    descriptorCapacityBytes(descriptor)
  },
  refusalCode: h2kRefusal,
  maxLength: 16 * 1024,
  dictionary: [
    '# Disk DescriptorFile\n', 'version=1\n', 'CID=', 'parentCID=ffffffff\n', 'createType=', '"monolithicSparse"', '"monolithicFlat"',
    '"vmfs"', '"twoGbMaxExtentSparse"', '"streamOptimized"', 'parentFileNameHint=', 'RW ', 'RDONLY ', 'NOACCESS ', ' SPARSE ', ' FLAT ',
    ' ZERO ', ' VMFS ', ' SESPARSE ', ' "disk-flat.vmdk"', ' 0\n', 'ddb.virtualHWVersion = "4"\n', 'ddb.geometry.cylinders = "2"\n',
    '# Extent description\n', '\r\n', '\0', '"', '=', '18446744073709551615', '9007199254740993', '-1', '0x10',
  ],
}
