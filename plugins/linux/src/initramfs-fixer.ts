import {H2KError, type GuestSession, type KernelInfo, type PipelineStage, type StageContext} from '@hyper2kvm/plugin-api'

import {gatherFacts} from './guest-facts.js'
import {isFixableLinux} from './linux-applies.js'
import {applyTransform} from './record-edit.js'
import {
  DEFAULT_INITRAMFS_DRIVERS,
  DRACUT_CONF_PATH,
  type TransformResult,
  dracutConfFor,
  ensureInitramfsToolsModules,
  ensureMkinitcpioModules,
  ensureMkinitfsFeatures,
  ensureSuseInitrdModules,
} from './transforms/index.js'

const STAGE = 'fixer:initramfs'

/** Shell-safe: kernel versions and paths come from the guest's /lib/modules and /boot listings. */
function quote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}

/** What the guest's configuration says beyond its drivers (from inspection). */
interface GuestNeeds {
  swap: boolean
}

interface ToolPlan {
  /** The config file that makes the drivers part of every future initramfs too. */
  config: string
  edit: (text: string, drivers: readonly string[], guest: GuestNeeds) => TransformResult
  /** The command that rebuilds the initramfs of one kernel, run inside the guest. */
  rebuild: (kernel: KernelInfo) => string
}

const PLANS: Record<string, ToolPlan> = {
  dracut: {
    config: DRACUT_CONF_PATH,
    edit: (_text, drivers, guest) => {
      const text = dracutConfFor(drivers, {resume: guest.swap})
      return {edits: [{after: text.trim(), before: '', line: 1, reason: 'dracut: always include the virtio drivers', }], text, warnings: []}
    },
    rebuild: (k) => `dracut -f ${quote(k.initramfs ?? `/boot/initramfs-${k.version}.img`)} ${quote(k.version)}`,
  },
  'initramfs-tools': {
    config: '/etc/initramfs-tools/modules',
    edit: ensureInitramfsToolsModules,
    rebuild: (k) => `update-initramfs ${k.initramfs ? '-u' : '-c'} -k ${quote(k.version)}`,
  },
  mkinitcpio: {config: '/etc/mkinitcpio.conf', edit: ensureMkinitcpioModules, rebuild: (k) => `mkinitcpio -k ${quote(k.version)} -g ${quote(k.initramfs ?? '/boot/initramfs-linux.img')}`},
  mkinitfs: {config: '/etc/mkinitfs/mkinitfs.conf', edit: ensureMkinitfsFeatures, rebuild: (k) => `mkinitfs ${quote(k.version)}`},
  mkinitrd: {config: '/etc/sysconfig/kernel', edit: ensureSuseInitrdModules, rebuild: (k) => `mkinitrd -k ${quote(`vmlinuz-${k.version}`)} -i ${quote(k.initramfs ?? `initrd-${k.version}`)}`},
}

async function rebuildAll(ctx: StageContext, session: GuestSession, plan: ToolPlan, kernels: KernelInfo[]): Promise<void> {
  for (const [index, kernel] of kernels.entries()) {
    ctx.report({message: `rebuilding the initramfs of ${kernel.version}`, percent: (index / kernels.length) * 100})
    try {
      await session.sh(`${plan.rebuild(kernel)} 2>&1`)
    } catch (error) {
      throw new H2KError('H2K_FIX_FAILED', `Rebuilding the initramfs of ${kernel.version} failed: ${(error as Error).message.split('\n').slice(-8).join('\n')}`, {cause: error})
    }
  }
}

/**
 * initramfs: the virtio drivers (plus ahci, nvme, sd_mod, dm_mod) become a permanent part of the guest's
 * initramfs configuration, then the initramfs of every installed kernel is rebuilt by the guest's own
 * tool, inside the guest, and checked to contain virtio_blk.
 */
export const initramfsFixer: PipelineStage = {
  after: ['fstab', 'grub'],
  applies: (ctx) => isFixableLinux(ctx) && ctx.job.fix.initramfs,
  description: 'initramfs: add virtio drivers to the guest\'s initramfs config and rebuild it for every installed kernel with the guest\'s own tool',
  kind: 'fixer',
  name: 'initramfs',
  async run(ctx) {
    const session = await ctx.guest.open()
    const inspection = ctx.inspection!
    const tool = inspection.initramfsTool
    const plan = tool ? PLANS[tool] : undefined
    if (!plan) throw new H2KError('H2K_FIX_FAILED', `The guest has no initramfs tool hyper2kvm knows (${tool ?? 'none found'}); its initramfs cannot be given virtio drivers.`)
    const kernels = inspection.kernels.filter((k) => k.hasVirtio)
    for (const kernel of inspection.kernels.filter((k) => !k.hasVirtio)) ctx.warn('KERNEL_WITHOUT_VIRTIO', `Kernel ${kernel.version} has no virtio_blk module; its initramfs is left as is.`)
    if (kernels.length === 0) throw new H2KError('H2K_FIX_FAILED', 'No installed kernel has a virtio_blk driver; the guest cannot boot on virtio.')
    const drivers = ctx.job.fix.initramfsDrivers ?? DEFAULT_INITRAMFS_DRIVERS
    const before = (await session.readFile(plan.config)) ?? ''
    const guest: GuestNeeds = {swap: inspection.fstab.some((entry) => entry.fstype === 'swap')}
    await applyTransform(ctx, STAGE, plan.config, before, plan.edit(before, drivers, guest))
    await rebuildAll(ctx, session, plan, kernels)

    const after = await gatherFacts(session)
    for (const kernel of kernels) {
      const rebuilt = after.kernels.find((k) => k.version === kernel.version)
      if (rebuilt?.virtioInInitramfs === false) {
        throw new H2KError('H2K_FIX_FAILED', `The rebuilt initramfs of ${kernel.version} still has no virtio_blk.`, {details: {initramfs: rebuilt.initramfs}})
      }
      ctx.changes.record({
        after: null,
        before: null,
        path: rebuilt?.initramfs ?? kernel.initramfs ?? `initramfs of ${kernel.version}`,
        reason: `rebuilt by ${tool} with ${drivers.join(', ')}${rebuilt?.virtioInInitramfs ? '; virtio_blk verified inside' : ''}`,
        stage: STAGE,
      })
    }
  },
}
