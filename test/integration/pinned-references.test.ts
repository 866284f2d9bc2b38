/**
 * describe-disks is the pipeline's own check, whoever wrote the loader: a spec that leaves qemu free to
 * open something (a qcow2 data file, a capacity-0 VMDK header's extents, a descriptor's undeclared
 * extent) is refused before qemu opens the layer.
 */
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BlockdevSpec, fileNode, formatNode, type Source} from '@hyper2kvm/plugin-api'
import {describeDisks} from '../../src/stages/describe-disks.js'
import {flatDescriptor, patternedRaw, qcow2WithDataFile, vmdkFooterTrick, writeMarker} from '../helpers/hostile-image-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'

function source(spec: BlockdevSpec, files: string[]): Source {
  return {disks: [{files, format: spec.driver, label: 'disk', spec}], format: spec.driver, input: files[0]!, name: 'disk'}
}

async function refused(spec: BlockdevSpec, files: string[], message: RegExp): Promise<void> {
  await assert.rejects(describeDisks(source(spec, files), AbortSignal.timeout(60_000)), (error: {code?: string; message: string}) => {
    assert.equal(error.code, 'H2K_UNSAFE_BACKING', error.message)
    assert.match(error.message, message)
    return true
  })
}

describe('describe-disks refuses what a loader did not pin', function () {
  let dir: string
  let cleanup: () => void
  let marker: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-pinned-'))
    marker = writeMarker(dir, 'H2K-MARKER-pinned')
  })
  after(() => cleanup())

  it('a qcow2 node without data-file on an image that has an external data file', async () => {
    const image = qcow2WithDataFile(join(dir, 'q', 'disk.qcow2'), marker)
    await refused(formatNode('qcow2', image), [image], /external data file/)
  })

  it('accepts the same image once the data file is pinned as a declared file', async () => {
    const data = patternedRaw(join(dir, 'p', 'data.raw'))
    const image = qcow2WithDataFile(join(dir, 'p', 'disk.qcow2'), 'data.raw', {keepData: data})
    const src = source(formatNode('qcow2', image, null, {dataFile: data}), [image, data])
    await describeDisks(src, AbortSignal.timeout(60_000))
    assert.equal(src.disks[0]!.virtualSize, 1024 * 1024)
  })

  it('a vmdk node on a sparse file whose first header wraps a descriptor (capacity 0)', async () => {
    const vmdk = vmdkFooterTrick(join(dir, 'v'), 'disk.vmdk', marker)
    await refused(formatNode('vmdk', vmdk), [vmdk], /capacity 0/)
  })

  it('a vmdk node on a text descriptor naming an extent the disk does not declare', async () => {
    const descriptor = join(dir, 'v', 'flat.vmdk')
    writeFileSync(descriptor, flatDescriptor(marker))
    await refused(formatNode('vmdk', fileNode(descriptor)), [descriptor], /VMDK extent/)
  })
})
