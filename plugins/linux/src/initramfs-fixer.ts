import {H2KError, type GuestSession, type KernelInfo, type PipelineStage, type StageContext} from '@hyper2kvm/plugin-api'

import {gatherFacts, initramfsHasVirtio} from './guest-facts.js'
import {appendDrivers, describeFallback} from './initramfs-append.js'
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

/**
 * The initramfs tools whose images the append form is proved on (the e2e suite boots an appended image of
 * each on virtio); `--initramfs-mode auto` rebuilds with the guest's tool for any other.
 */
const APPEND_PROVED: ReadonlySet<string> = new Set(['dracut', 'initramfs-tools'])

/** Appended with the drivers besides the job's list: the virtio console, for a guest console on KVM. */
const APPEND_EXTRA_DRIVERS = ['virtio_console']

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

/** An image's size in bytes (null: no such file). */
async function imageSize(session: GuestSession, path: string | undefined): Promise<number | null> {
  if (path === undefined || !(await session.exists(path))) return null
  const size = Number((await session.call('filesize', path)).trim())
  return Number.isSafeInteger(size) ? size : null
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
 * Each rebuilt kernel's image and whether it lists virtio_blk. Only the rebuilt images are read again
 * (one listing each, a second one by the guest's lister for an image the first says lacks virtio_blk); a
 * kernel that had no image before is looked up with the full facts script, since only the tool knows
 * where it wrote the new one.
 */
export async function rebuiltImages(session: GuestSession, kernels: KernelInfo[]): Promise<Map<string, {image?: string; virtio?: boolean}>> {
  const result = new Map<string, {image?: string; virtio?: boolean}>()
  const known = kernels.filter((k) => k.initramfs !== undefined)
  const checked = await initramfsHasVirtio(session, known.map((k) => k.initramfs!))
  for (const kernel of known) result.set(kernel.version, {image: kernel.initramfs, virtio: checked.get(kernel.initramfs!)})
  if (known.length < kernels.length) {
    const facts = await gatherFacts(session)
    for (const kernel of kernels.filter((k) => k.initramfs === undefined)) {
      const found = facts.kernels.find((k) => k.version === kernel.version)
      result.set(kernel.version, {image: found?.initramfs, virtio: found?.virtioInInitramfs})
    }
  }
  // The quick listing reads the first archive only: before an image is called one without virtio_blk, the
  // guest's own lister (lsinitramfs/lsinitrd) has the last word, where the guest has one.
  const doubted = [...result.values()].filter((r) => r.virtio === false && r.image !== undefined).map((r) => r.image!)
  const second = await initramfsHasVirtio(session, doubted, {full: true})
  for (const entry of result.values()) if (entry.image !== undefined && second.get(entry.image) === true) entry.virtio = true
  return result
}

/**
 * initramfs: the virtio drivers (plus ahci, nvme, sd_mod, dm_mod) become a permanent part of the guest's
 * initramfs configuration; then each installed kernel's image gets them (--initramfs-mode): appended as an
 * extra cpio member with a module index from the guest's depmod (initramfs-append.ts; seconds), or rebuilt
 * by the guest's own tool inside the guest (minutes under TCG) where appending does not apply or is not
 * proved for the tool; either way checked to contain virtio_blk, and the report says which per kernel.
 */
export const initramfsFixer: PipelineStage = {
  // Last: whatever the other fixers change (a modprobe setting of fixer:vmware-tools, network renames udev
  // copies into the image) must be in the rebuilt initramfs — or, appended, ride along in the extra member.
  after: ['fstab', 'grub', 'network', 'vmware-tools'],
  applies: (ctx) => isFixableLinux(ctx) && ctx.job.fix.initramfs,
  description: 'initramfs: add virtio drivers to the guest\'s initramfs config, and to every installed kernel\'s image: appended as an extra cpio member, or rebuilt with the guest\'s own tool (--initramfs-mode)',
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
    // One guestfish call at a time: the appliance serves one listener.
    const sizesBefore = new Map<string, number | null>()
    for (const kernel of kernels) sizesBefore.set(kernel.version, await imageSize(session, kernel.initramfs))
    const mode = ctx.job.fix.initramfsMode ?? 'auto'
    const tryAppend = mode === 'append' || (mode === 'auto' && APPEND_PROVED.has(tool!))
    if (ctx.dryRun) {
      // A plan shows the config edit above; appending or rebuilding only regenerates images (and the rebuild is the slow part under TCG).
      const how = tryAppend ? `would get ${drivers.join(', ')} appended as an extra cpio member${mode === 'auto' ? ` (or be rebuilt by ${tool} if the append form does not apply)` : ''}` : `would be rebuilt by ${tool} with ${drivers.join(', ')}`
      for (const kernel of kernels) {
        ctx.changes.record({
          after: null,
          before: null,
          bytes: {after: null, before: sizesBefore.get(kernel.version) ?? null},
          path: kernel.initramfs ?? `initramfs of ${kernel.version}`,
          reason: `${how} (dry run: not written, not checked)`,
          stage: STAGE,
        })
      }
      return
    }
    let toRebuild = kernels
    if (tryAppend) toRebuild = await appendAll(ctx, session, kernels, [...drivers, ...APPEND_EXTRA_DRIVERS], mode === 'append')
    if (toRebuild.length === 0) return
    await rebuildAll(ctx, session, plan, toRebuild)

    const rebuilt = await rebuiltImages(session, toRebuild)
    for (const kernel of toRebuild) {
      const {image, virtio} = rebuilt.get(kernel.version) ?? {}
      if (virtio === false) {
        throw new H2KError('H2K_FIX_FAILED', `The rebuilt initramfs of ${kernel.version} still has no virtio_blk.`, {details: {initramfs: image}})
      }
      const path = image ?? kernel.initramfs
      ctx.changes.record({
        after: null,
        before: null,
        bytes: {after: await imageSize(session, path), before: sizesBefore.get(kernel.version) ?? null},
        path: path ?? `initramfs of ${kernel.version}`,
        reason: `rebuilt by ${tool} with ${drivers.join(', ')}${virtio ? '; virtio_blk verified inside' : ''} (method: rebuild)`,
        stage: STAGE,
      })
    }
  },
}

/**
 * The append form for every kernel that has an image: returns the kernels it could not be used for (to be
 * rebuilt by the guest's tool, each with a warning), or fails the stage when `required` (--initramfs-mode append).
 */
async function appendAll(ctx: StageContext, session: GuestSession, kernels: KernelInfo[], drivers: readonly string[], required: boolean): Promise<KernelInfo[]> {
  const rest: KernelInfo[] = []
  // What the other fixers changed: a copy of it inside the image is refreshed in the appended member.
  const changed = [...new Set(ctx.changes.all.filter((c) => c.stage !== STAGE && (c.before !== null || c.after !== null) && c.path.startsWith('/')).map((c) => c.path))]
  for (const [index, kernel] of kernels.entries()) {
    ctx.report({message: `appending the virtio drivers to the initramfs of ${kernel.version}`, percent: (index / kernels.length) * 100})
    const outcome = kernel.initramfs === undefined ? {kind: 'fallback' as const, reason: 'no-image'} : await appendDrivers(session, kernel.version, kernel.initramfs, drivers, changed)
    if (outcome.kind === 'appended') {
      ctx.changes.record({
        after: null,
        before: null,
        bytes: {after: outcome.bytesAfter, before: outcome.bytesBefore},
        path: kernel.initramfs!,
        reason: `virtio drivers appended as an extra cpio member (method: append): ${outcome.modules.join(', ')}; module index regenerated by the guest's depmod; original archive kept byte for byte; virtio_blk verified inside`,
        stage: STAGE,
      })
    } else if (outcome.kind === 'none') {
      ctx.report({message: `the initramfs of ${kernel.version} already holds every driver: left as is (method: append)`})
    } else {
      const why = describeFallback(outcome.reason)
      if (required) throw new H2KError('H2K_FIX_FAILED', `The virtio drivers cannot be appended to the initramfs of ${kernel.version}: ${why} (--initramfs-mode append; auto would rebuild it with the guest's tool).`, {details: {initramfs: kernel.initramfs, reason: outcome.reason}})
      ctx.warn('INITRAMFS_APPEND_FELL_BACK', `The initramfs of ${kernel.version} is rebuilt with the guest's tool instead of appended to: ${why} (${outcome.reason}).`)
      rest.push(kernel)
    }
  }
  return rest
}
