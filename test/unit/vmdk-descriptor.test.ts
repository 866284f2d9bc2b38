import assert from 'node:assert/strict'

import {descriptorCapacityBytes, detectImageFormat, parseVmdkDescriptor} from '@hyper2kvm/plugin-api'

/** Assert that parsing fails with an H2KError of `code`. */
function rejects(text: string, code: string, message?: RegExp): void {
  assert.throws(
    () => parseVmdkDescriptor(text, 'test.vmdk'),
    (error: unknown) => {
      assert.equal((error as {code?: string}).code, code, String(error))
      if (message) assert.match((error as Error).message, message)
      return true
    },
  )
}

// As qemu-img writes it into a monolithicSparse file: NUL padding after the text.
const QEMU_EMBEDDED = `# Disk DescriptorFile
version=1
CID=feffd834
parentCID=ffffffff
createType="monolithicSparse"

# Extent description
RW 131072 SPARSE "d.vmdk"

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.geometry.cylinders = "130"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
ddb.adapterType = "ide"
ddb.toolsVersion = "2147483647"
${'\0'.repeat(300)}`

// VMware Workstation, split in 2 GB pieces, written on Windows: CRLF and windows-1252.
const WORKSTATION_SPLIT = [
  '# Disk DescriptorFile',
  'version=1',
  'encoding="windows-1252"',
  'CID=5b7c09a2',
  'parentCID=ffffffff',
  'isNativeSnapshot="no"',
  'createType="twoGbMaxExtentSparse"',
  '',
  '# Extent description',
  'RW 8323072 SPARSE "Windows 10 x64-s001.vmdk"',
  'RW 8323072 SPARSE "Windows 10 x64-s002.vmdk"',
  'RW 20480 SPARSE "Windows 10 x64-s003.vmdk"',
  '',
  '# The Disk Data Base ',
  '#DDB',
  '',
  'ddb.adapterType = "lsisas1068"',
  'ddb.geometry.cylinders = "1044"',
  'ddb.geometry.heads = "255"',
  'ddb.geometry.sectors = "63"',
  'ddb.longContentID = "0b4e36c2e3b5a1f35b7c09a2fffffffe"',
  'ddb.uuid = "60 00 C2 9a 1f 4c 7e 33-d8 27 05 4c 2a 6e 1b 44"',
  'ddb.virtualHWVersion = "18"',
  '',
].join('\r\n')

// ESXi, thick: the data file is named by a VMFS extent without offset.
const ESXI_VMFS = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 83886080 VMFS "web01-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.deletable = "true"
ddb.geometry.cylinders = "5221"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.longContentID = "8e5bd8f1a0e1d9c4b3f2a7c1fffffffe"
ddb.thinProvisioned = "1"
ddb.toolsInstallType = "4"
ddb.toolsVersion = "12352"
ddb.uuid = "60 00 C2 9f 3b 1e 5a 6d-8e 11 2c 4a 5b 6c 7d 8e"
ddb.virtualHWVersion = "19"
`

// ESXi thin, hand-edited by someone fond of tabs and bare values.
const ESXI_VMFS_THIN = `# Disk DescriptorFile
version=1
CID=7d3a10c4
parentCID=ffffffff
createType=vmfsThin

# Extent description
RW\t41943040\tVMFS\t"db 02-flat.vmdk"

#DDB
ddb.adapterType\t=\t"pvscsi"
ddb.thinProvisioned = "1"
`

const ESXI_SNAPSHOT = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=a1b2c3d4
parentCID=fffffffe
isNativeSnapshot="no"
createType="vmfsSparse"
parentFileNameHint="web01.vmdk"
# Extent description
RW 83886080 VMFSSPARSE "web01-000001-delta.vmdk"

# The Disk Data Base
#DDB

ddb.longContentID = "5b6c7d8e9f0a1b2c3d4e5f60a1b2c3d4"
`

const SPLIT_FLAT = `# Disk DescriptorFile
version=1
CID=15d295b7
parentCID=ffffffff
createType="twoGbMaxExtentFlat"

# Extent description
RW 4192256 FLAT "big-f001.vmdk" 0
RW 4192256 FLAT "big-f002.vmdk" 0
RW 2048 FLAT "big-f003.vmdk" 0
`

const WORKSTATION_SNAPSHOT = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=b7da96d0
parentCID=125fdacb
createType="monolithicSparse"
parentFileNameHint="Windows 10 x64.vmdk"

# Extent description
RW 131072 SPARSE "Windows 10 x64-000001.vmdk"
`

describe('parseVmdkDescriptor', () => {
  it('reads a monolithicFlat descriptor file as qemu-img sometimes writes it: a line end among the NUL padding', () => {
    // Seen from qemu-img 7.2 when the CID has fewer than 8 hex digits; it made the -flat.vmdk probe flaky.
    const text = `# Disk DescriptorFile\nversion=1\nCID=e6c2b0\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 131072 FLAT "web01-flat.vmdk" 0\n\nddb.adapterType = "ide"\n\0\n${'\0'.repeat(200)}`
    assert.equal(detectImageFormat(Buffer.from(text, 'latin1')), 'vmdk-descriptor')
    const d = parseVmdkDescriptor(text)
    assert.equal(d.cid, '00e6c2b0')
    assert.deepEqual(d.extents.map((e) => e.filename), ['web01-flat.vmdk'])
    // NUL bytes inside the text are still refused.
    assert.equal(detectImageFormat(Buffer.from(`# Disk DescriptorFile\ncreateType="vmfs"\n\0\0\x01garbage\nRW 1 VMFS "a"\n`, 'latin1')), null)
  })

  it('parses the descriptor qemu embeds in a monolithicSparse file, NUL padding included', () => {
    const d = parseVmdkDescriptor(QEMU_EMBEDDED)
    assert.equal(d.version, 1)
    assert.equal(d.cid, 'feffd834')
    assert.equal(d.parentCid, 'ffffffff')
    assert.equal(d.createType, 'monolithicSparse')
    assert.equal(d.parentFileNameHint, undefined)
    assert.deepEqual(d.extents, [{access: 'RW', filename: 'd.vmdk', line: 8, offset: 0, sectors: 131072, type: 'SPARSE'}])
    assert.equal(d.ddb.adapterType, 'ide')
    assert.equal(d.ddb['geometry.cylinders'], '130')
    assert.equal(descriptorCapacityBytes(d), 64 * 1024 * 1024)
  })

  it('parses a split Workstation descriptor with CRLF line ends, spaces in names and the ddb uuid', () => {
    const d = parseVmdkDescriptor(WORKSTATION_SPLIT)
    assert.equal(d.createType, 'twoGbMaxExtentSparse')
    assert.equal(d.encoding, 'windows-1252')
    assert.equal(d.fields.isNativeSnapshot, 'no')
    assert.deepEqual(
      d.extents.map((e) => [e.sectors, e.type, e.filename]),
      [
        [8323072, 'SPARSE', 'Windows 10 x64-s001.vmdk'],
        [8323072, 'SPARSE', 'Windows 10 x64-s002.vmdk'],
        [20480, 'SPARSE', 'Windows 10 x64-s003.vmdk'],
      ],
    )
    assert.equal(d.ddb.uuid, '60 00 C2 9a 1f 4c 7e 33-d8 27 05 4c 2a 6e 1b 44')
    assert.equal(d.ddb.adapterType, 'lsisas1068')
    assert.equal(descriptorCapacityBytes(d), (8323072 * 2 + 20480) * 512)
  })

  it('parses an ESXi vmfs descriptor (VMFS extent without offset)', () => {
    const d = parseVmdkDescriptor(ESXI_VMFS)
    assert.equal(d.createType, 'vmfs')
    assert.equal(d.cid, 'fffffffe')
    assert.deepEqual(d.extents, [{access: 'RW', filename: 'web01-flat.vmdk', line: 9, offset: 0, sectors: 83886080, type: 'VMFS'}])
    assert.equal(d.ddb.thinProvisioned, '1')
    assert.equal(d.ddb.virtualHWVersion, '19')
  })

  it('parses an ESXi vmfsThin descriptor written with tabs and unquoted values', () => {
    const d = parseVmdkDescriptor(ESXI_VMFS_THIN)
    assert.equal(d.createType, 'vmfsThin')
    assert.equal(d.extents[0]?.filename, 'db 02-flat.vmdk')
    assert.equal(d.extents[0]?.type, 'VMFS')
    assert.equal(d.ddb.adapterType, 'pvscsi')
  })

  it('parses ESXi and Workstation snapshot descriptors with their parent', () => {
    const esxi = parseVmdkDescriptor(ESXI_SNAPSHOT)
    assert.equal(esxi.createType, 'vmfsSparse')
    assert.equal(esxi.parentFileNameHint, 'web01.vmdk')
    assert.equal(esxi.parentCid, 'fffffffe')
    assert.equal(esxi.extents[0]?.type, 'VMFSSPARSE')
    const workstation = parseVmdkDescriptor(WORKSTATION_SNAPSHOT)
    assert.equal(workstation.parentFileNameHint, 'Windows 10 x64.vmdk')
    assert.equal(workstation.parentCid, '125fdacb')
  })

  it('parses split flat extents with their offsets', () => {
    const d = parseVmdkDescriptor(SPLIT_FLAT.replace('"big-f002.vmdk" 0', '"big-f002.vmdk" 2048'))
    assert.deepEqual(
      d.extents.map((e) => [e.filename, e.offset]),
      [
        ['big-f001.vmdk', 0],
        ['big-f002.vmdk', 2048],
        ['big-f003.vmdk', 0],
      ],
    )
  })

  it('accepts RDONLY, NOACCESS, ZERO and raw-device extents (the loader decides what it reads)', () => {
    const d = parseVmdkDescriptor(`# Disk DescriptorFile
createType="custom"
RDONLY 100 FLAT "a.img" 0
NOACCESS 100 FLAT "b.img" 5
RW 100 ZERO
RW 2147483648 VMFSRDM "lun-rdmp.vmdk"
RW 100 VMFSRAW "lun-rdm.vmdk"
RW 100 SESPARSE "x-sesparse.vmdk"
`)
    assert.deepEqual(
      d.extents.map((e) => [e.access, e.type, e.filename ?? null]),
      [
        ['RDONLY', 'FLAT', 'a.img'],
        ['NOACCESS', 'FLAT', 'b.img'],
        ['RW', 'ZERO', null],
        ['RW', 'VMFSRDM', 'lun-rdmp.vmdk'],
        ['RW', 'VMFSRAW', 'lun-rdm.vmdk'],
        ['RW', 'SESPARSE', 'x-sesparse.vmdk'],
      ],
    )
    assert.equal(d.version, 1, 'a missing version means version 1')
  })

  it('keeps hostile names verbatim for the loader to refuse', () => {
    const d = parseVmdkDescriptor(`# Disk DescriptorFile
createType="monolithicFlat"
RW 10 FLAT "/etc/shadow" 0
RW 10 FLAT "../../secret.img" 0
RW 10 FLAT "file:///etc/passwd" 0
`)
    assert.deepEqual(
      d.extents.map((e) => e.filename),
      ['/etc/shadow', '../../secret.img', 'file:///etc/passwd'],
    )
  })

  describe('refuses', () => {
    it('text that is not a descriptor at all as unrecognised', () => {
      rejects('', 'H2K_INPUT_UNRECOGNIZED')
      rejects('Hello, this is my notes file.\nNothing to see here.\n', 'H2K_INPUT_UNRECOGNIZED')
      rejects('name = value\nother = thing\n', 'H2K_INPUT_UNRECOGNIZED')
    })

    it('binary content inside the text', () => {
      rejects(`# Disk DescriptorFile\ncreateType="vmfs"\n\0\0\x01garbage\nRW 1 VMFS "a"\n`, 'H2K_INPUT_CORRUPT', /NUL/)
    })

    it('a line that is neither entry, comment nor extent', () => {
      rejects(`# Disk DescriptorFile\ncreateType="vmfs"\nRW 100 VMFS "a-flat.vmdk"\nthis line is garbage\n`, 'H2K_INPUT_CORRUPT', /line 4/)
    })

    it('a descriptor without createType or without extents', () => {
      rejects('# Disk DescriptorFile\nversion=1\nRW 100 VMFS "a-flat.vmdk"\n', 'H2K_INPUT_CORRUPT', /createType/)
      rejects('# Disk DescriptorFile\nversion=1\ncreateType="vmfs"\n', 'H2K_INPUT_CORRUPT', /no extents/)
    })

    it('broken extent lines', () => {
      const wrap = (line: string): string => `# Disk DescriptorFile\ncreateType="monolithicFlat"\n${line}\n`
      rejects(wrap('RW lots FLAT "a-flat.vmdk" 0'), 'H2K_INPUT_CORRUPT', /not a number of sectors/)
      rejects(wrap('RW 0 FLAT "a-flat.vmdk" 0'), 'H2K_INPUT_CORRUPT', /positive/)
      rejects(wrap('RW 100 FLAT "a-flat.vmdk"'), 'H2K_INPUT_CORRUPT', /sector offset/)
      rejects(wrap('RW 100 FLAT "a-flat.vmdk 0'), 'H2K_INPUT_CORRUPT', /closing quote/)
      rejects(wrap('RW 100 FLAT "a-flat.vmdk" zero'), 'H2K_INPUT_CORRUPT', /not a sector offset/)
      rejects(wrap('RW 100 SPARSE "a.vmdk" 7'), 'H2K_INPUT_CORRUPT', /only FLAT extents/)
      rejects(wrap('RW 100 FLAT "" 0'), 'H2K_INPUT_CORRUPT', /empty/)
      rejects(wrap('RW 99999999999999999 FLAT "a" 0'), 'H2K_INPUT_CORRUPT')
    })

    it('an extent type nobody defined as unsupported', () => {
      rejects('# Disk DescriptorFile\ncreateType="vmfs"\nRW 100 CLOUDY "a.vmdk"\n', 'H2K_INPUT_UNSUPPORTED', /CLOUDY/)
    })

    it('ambiguous repeated entries (two parents, two types)', () => {
      rejects(`${WORKSTATION_SNAPSHOT}parentFileNameHint="other.vmdk"\n`, 'H2K_INPUT_CORRUPT', /appears twice/)
      rejects(`${ESXI_VMFS}createType="monolithicFlat"\n`, 'H2K_INPUT_CORRUPT', /appears twice/)
    })

    it('malformed content ids, versions and parent hints', () => {
      rejects(ESXI_VMFS.replace('CID=fffffffe', 'CID=not-hex'), 'H2K_INPUT_CORRUPT', /CID/)
      rejects(ESXI_VMFS.replace('version=1', 'version=one'), 'H2K_INPUT_CORRUPT', /version/)
      rejects(WORKSTATION_SNAPSHOT.replace('"Windows 10 x64.vmdk"', '""'), 'H2K_INPUT_CORRUPT', /parentFileNameHint/)
      rejects(ESXI_VMFS.replace('createType="vmfs"', 'createType="vm fs; rm"'), 'H2K_INPUT_CORRUPT', /createType/)
    })
  })
})
