import {H2KError, type Source} from '@hyper2kvm/plugin-api'
import {chainLayers} from '@hyper2kvm/plugin-api/host'
import {checkImage, imageInfo} from '../qemu/qemu-img.js'
import {refuseReportedDataFile, refuseUnpinnedReferences} from './pinned-references.js'

/**
 * The pipeline's own look at every layer of every disk a loader produced, whoever wrote the loader: before
 * qemu opens a layer, a refusal of anything it could open that the loader did not pin (DRIVER_REFERENCES:
 * a qcow2 data file, a capacity-0 sparse VMDK, an undeclared extent); size from `qemu-img info` (under
 * resource limits), a refusal of any backing file or data file the loader did not choose (a layer that
 * still names one after the loader's explicit chain ended), and a `qemu-img check` so
 * damaged metadata fails now instead of converting into silent zeros.
 */
export async function describeDisks(source: Source, signal: AbortSignal, sandbox = true): Promise<void> {
  for (const disk of source.disks) {
    const layers = chainLayers(disk.spec)
    let allocated = 0
    for (const [depth, layer] of layers.entries()) {
      const label = disk.label ?? source.name
      await refuseUnpinnedReferences(layer, disk.files, label)
      const info = await imageInfo(layer, {files: disk.files, phase: 'load', sandbox, signal})
      refuseReportedDataFile(info, layer, label)
      const backing = info['backing-filename']
      if (backing && depth === layers.length - 1) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${disk.label ?? source.name} refers to a backing file "${backing}" that its loader did not open; refusing it.`, {
          details: {backing, disk: disk.label},
          phase: 'load',
        })
      }
      if (depth === 0) disk.virtualSize = info['virtual-size']
      allocated += info['actual-size'] ?? info['virtual-size']
      const check = await checkImage(layer, {files: disk.files, phase: 'load', sandbox, signal})
      if (check.corruptions > 0 || check.checkErrors > 0) {
        throw new H2KError('H2K_INPUT_CORRUPT', `qemu-img check found ${check.corruptions} corruption(s) and ${check.checkErrors} error(s) in ${disk.label ?? source.name}.`, {
          details: {...check, disk: disk.label},
          phase: 'load',
        })
      }
    }
    disk.allocatedBytes ??= allocated
  }
}
