import type {PipelineStage} from '@hyper2kvm/plugin-api'

import {inspectGuest} from './inspect-guest.js'
import {mayHoldOs} from './os-signature.js'

/**
 * INSPECT: opens the job's appliance (overlays over the source) and learns the guest. Runs when fixing is
 * on (the default) and some disk could hold an OS; a blank or data-only disk set is converted as is.
 */
export const guestInspector: PipelineStage = {
  async applies(ctx) {
    if (!ctx.job.fix.enabled || !ctx.source) return false
    if (await mayHoldOs(ctx, ctx.source.disks)) return true
    ctx.warn('NO_OS_SIGNATURE', 'No disk has a partition table, filesystem, LVM or LUKS signature: converting without inspection or fixes.')
    return false
  },
  description: 'libguestfs inspection: OS, distro, root (chosen by rule), firmware, boot loader, kernels and their virtio drivers, initramfs tool, fstab, risks',
  kind: 'inspector',
  name: 'guest',
  async run(ctx) {
    ctx.report({message: 'starting the appliance'})
    const session = await ctx.guest.open()
    ctx.report({message: 'inspecting'})
    const inspection = await inspectGuest(session, {readOnly: false})
    ctx.inspection = inspection
    for (const risk of inspection.risks) {
      if (risk.code === 'NO_OS_FOUND' || risk.code === 'UNSUPPORTED_OS' || risk.code === 'LUKS_PRESENT' || risk.code === 'NO_BOOTLOADER') ctx.warn(risk.code, risk.message)
    }
    ctx.log.info(`guest: ${inspection.product ?? inspection.os} on ${inspection.root ?? 'no root'} (${inspection.rootChoice ?? ''})`)
  },
}
