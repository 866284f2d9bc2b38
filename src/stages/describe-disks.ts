import {H2KError} from '../errors/h2k-error.js'
import {checkImage, imageInfo} from '../qemu/qemu-img.js'
import type {Source} from './stage-types.js'

/**
 * The pipeline's own look at every disk a loader produced, whoever wrote the loader: size from
 * `qemu-img info` (under resource limits), a refusal of any backing file the loader did not choose, and
 * a `qemu-img check` so damaged metadata fails now instead of converting into silent zeros.
 */
export async function describeDisks(source: Source, signal: AbortSignal): Promise<void> {
  for (const disk of source.disks) {
    const info = await imageInfo(disk.spec, {phase: 'load', signal})
    const backing = info['backing-filename']
    if (backing && (disk.spec.backing === null || disk.spec.backing === undefined)) {
      throw new H2KError('H2K_UNSAFE_BACKING', `${disk.label ?? source.name} refers to a backing file "${backing}" that its loader did not open; refusing it.`, {
        details: {backing, disk: disk.label},
        phase: 'load',
      })
    }
    disk.virtualSize = info['virtual-size']
    disk.allocatedBytes ??= info['actual-size'] ?? info['virtual-size']
    const check = await checkImage(disk.spec, {phase: 'load', signal})
    if (check.corruptions > 0 || check.checkErrors > 0) {
      throw new H2KError('H2K_INPUT_CORRUPT', `qemu-img check found ${check.corruptions} corruption(s) and ${check.checkErrors} error(s) in ${disk.label ?? source.name}.`, {
        details: {...check, disk: disk.label},
        phase: 'load',
      })
    }
  }
}
