import type {PipelineStage} from '@hyper2kvm/plugin-api'

import {buildResolver, deviceNamesIn} from './guest-devices.js'
import {isFixableLinux} from './linux-applies.js'
import {applyTransform} from './record-edit.js'
import {rewriteCrypttab, rewriteFstab, rewriteInitramfsResume} from './transforms/index.js'

const STAGE = 'fixer:fstab'

/** fstab, crypttab and the initramfs resume device: unstable device names → UUID= (PARTUUID=/LABEL=). */
export const fstabFixer: PipelineStage = {
  applies: (ctx) => isFixableLinux(ctx) && ctx.job.fix.fstabMode !== 'noop',
  description: 'fstab and crypttab: /dev/sdX, hdX, xvdX, by-path, by-id names → UUID= (modes stabilize-all, bypath-only, noop)',
  kind: 'fixer',
  name: 'fstab',
  async run(ctx) {
    const session = await ctx.guest.open()
    const mode = ctx.job.fix.fstabMode
    const fstab = await session.readFile('/etc/fstab')
    const crypttab = await session.readFile('/etc/crypttab')
    const resume = await session.readFile('/etc/initramfs-tools/conf.d/resume')
    const resolve = await buildResolver(session, ctx.inspection!, deviceNamesIn(fstab, crypttab, resume))
    if (fstab !== null) await applyTransform(ctx, STAGE, '/etc/fstab', fstab, rewriteFstab(fstab, mode, resolve))
    if (crypttab !== null) await applyTransform(ctx, STAGE, '/etc/crypttab', crypttab, rewriteCrypttab(crypttab, mode, resolve))
    if (resume !== null && mode === 'stabilize-all') await applyTransform(ctx, STAGE, '/etc/initramfs-tools/conf.d/resume', resume, rewriteInitramfsResume(resume, resolve))
  },
}
