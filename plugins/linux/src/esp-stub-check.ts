import {H2KError, type GuestSession, type Inspection, type StageContext} from '@hyper2kvm/plugin-api'

import {type DeviceResolver, espStubTarget, findUnstableRoots, rewriteGrubCfg} from './transforms/index.js'

const STAGE = 'fixer:grub'

/** The guest path of a file on the mounted file system whose UUID or label is `value`; undefined if none has it. */
async function findOnMounted(ctx: StageContext, session: GuestSession, inspection: Inspection, by: 'uuid' | 'label', value: string, path: string): Promise<string | undefined> {
  for (const [mountpoint, device] of Object.entries(inspection.mountpoints).sort(([a], [b]) => a.localeCompare(b))) {
    let id: string
    try {
      id = (await session.call(by === 'uuid' ? 'vfs-uuid' : 'vfs-label', device)).trim()
    } catch (error) {
      // A file system whose id cannot be read is not the one searched for; say so in the debug log.
      ctx.log.debug(`${STAGE}: ${by} of ${device} (${mountpoint}) not readable: ${(error as Error).message}`)
      continue
    }
    if (by === 'uuid' ? id.toLowerCase() === value.toLowerCase() : id === value) return `${mountpoint === '/' ? '' : mountpoint}${path}`
  }
  return undefined
}

/**
 * A UEFI guest's ESP holds a grub.cfg stub that finds /boot (or /) by UUID and `configfile`s the real
 * config from it: that chained config is what GRUB reads at boot. Follow each stub and make sure (1) its
 * search finds a file system of this guest, (2) the config it chains to exists, and (3) that config passes a
 * root= virtio can find -- rewriting it like every other grub.cfg when it was not among the configs
 * already checked. `checked` are the configs the caller already rewrote and verified.
 */
export async function checkEspStubs(ctx: StageContext, session: GuestSession, resolve: DeviceResolver, stubs: Map<string, string>, checked: ReadonlySet<string>): Promise<void> {
  const inspection = ctx.inspection!
  for (const [stub, text] of stubs) {
    const target = espStubTarget(text)
    if (!target) {
      ctx.warn('FIX_WARNING', `${stub}: a grub.cfg stub whose search/configfile could not be followed; the config it chains to was not checked.`)
      continue
    }
    const config = await findOnMounted(ctx, session, inspection, target.by, target.value, target.config)
    if (!config) {
      throw new H2KError('H2K_FIX_FAILED', `${stub} searches for the file system with ${target.by} ${target.value}, which no file system of this guest has: GRUB would not find its config on KVM.`, {
        details: {by: target.by, config: target.config, stub},
      })
    }
    if (checked.has(config)) continue
    const original = await session.readFile(config)
    if (original === null) {
      throw new H2KError('H2K_FIX_FAILED', `${stub} chains to ${config}, which does not exist: GRUB would stop at its prompt.`, {details: {config, stub}})
    }
    const result = rewriteGrubCfg(original, resolve)
    for (const warning of result.warnings) ctx.warn('FIX_WARNING', `${config}: ${warning}`)
    if (result.text !== original) {
      await session.writeFile(config, result.text)
      ctx.changes.record({after: result.text, before: original, path: config, reason: `the config ${stub} chains to; root=/resume= made stable`, stage: STAGE})
    }
    const remaining = findUnstableRoots(result.text)
    if (remaining.length > 0) {
      throw new H2KError('H2K_FIX_FAILED', `${config} (chained from ${stub}) still passes ${remaining.map((r) => `root=${r.device}`).join(', ')} to the kernel; the guest would not find its root disk on virtio.`, {
        details: {config, remaining, stub},
      })
    }
  }
}
