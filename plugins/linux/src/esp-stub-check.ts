import {H2KError, type GuestSession, type Inspection, type StageContext} from '@hyper2kvm/plugin-api'

import {readBounded, unsafeAncestor} from './guest-queries.js'
import {type DeviceResolver, espStubTarget, findUnstableRoots, rewriteGrubCfg} from './transforms/index.js'

const STAGE = 'fixer:grub'

/** A chained grub.cfg larger than this is not one grub-mkconfig wrote; it is refused, not read. */
export const CHAINED_CONFIG_MAX_BYTES = 1024 * 1024

/**
 * The guest path prefix (mount point, '' for /) of the mounted file system whose UUID or label is `value`;
 * undefined if none has it.
 */
async function findMountPrefix(ctx: StageContext, session: GuestSession, inspection: Inspection, by: 'uuid' | 'label', value: string): Promise<string | undefined> {
  for (const [mountpoint, device] of Object.entries(inspection.mountpoints).sort(([a], [b]) => a.localeCompare(b))) {
    let id: string
    try {
      id = (await session.call(by === 'uuid' ? 'vfs-uuid' : 'vfs-label', device)).trim()
    } catch (error) {
      // A file system whose id cannot be read is not the one searched for; say so in the debug log.
      ctx.log.debug(`${STAGE}: ${by} of ${device} (${mountpoint}) not readable: ${(error as Error).message}`)
      continue
    }
    if (by === 'uuid' ? id.toLowerCase() === value.toLowerCase() : id === value) return mountpoint === '/' ? '' : mountpoint
  }
  return undefined
}

/** A path the stub names that we will not follow: one that climbs (`..`) or holds control characters. */
function unfollowablePath(path: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001F\u007F-\u009F]/.test(path) || path.split('/').includes('..')
}

/**
 * Where the chained config may be on the mounted file system: the path as the stub names it, then the path
 * without its first component -- GRUB sees a btrfs file system from its top, so a root in subvolume `@`
 * is `/@/boot/grub/grub.cfg` to GRUB and `/boot/grub/grub.cfg` in the mounted guest.
 */
function candidates(prefix: string, path: string): string[] {
  const parts = path.split('/').filter(Boolean)
  const paths = [`${prefix}/${parts.join('/')}`]
  if (parts.length > 1) paths.push(`${prefix}/${parts.slice(1).join('/')}`)
  return paths
}

type Chained = {state: 'found'; path: string; text: string} | {state: 'absent'} | {state: 'refused'}

/** The chained config: read bounded, a regular file only, never through a link (in its name or its directories). */
async function readChained(ctx: StageContext, session: GuestSession, stub: string, paths: string[], checked: ReadonlySet<string>): Promise<Chained | 'checked'> {
  for (const path of paths) {
    if (checked.has(path)) return 'checked'
    const parent = path.slice(0, path.lastIndexOf('/')) || '/'
    if (await unsafeAncestor(session, parent)) {
      // A directory on the way that is a link or not a directory: whether the file is there is not ours to learn.
      if (await session.exists(path)) return {state: 'refused'}
      continue
    }
    const read = await readBounded(session, path, CHAINED_CONFIG_MAX_BYTES)
    if (read.state === 'text') return {path, state: 'found', text: read.text}
    if (read.state === 'refused') {
      ctx.log.debug(`${STAGE}: the config ${stub} chains to ${read.why}`)
      return {state: 'refused'}
    }
  }
  return {state: 'absent'}
}

/**
 * A UEFI guest's ESP holds a grub.cfg stub that finds /boot (or /) by UUID and `configfile`s the real
 * config from it: that chained config is what GRUB reads at boot. Follow each stub and make sure (1) its
 * search finds a file system of this guest, (2) the config it chains to exists, and (3) that config passes a
 * root= virtio can find -- rewriting it like every other grub.cfg when it was not among the configs
 * already checked. `checked` are the configs the caller already rewrote and verified.
 *
 * Everything in a stub is the guest's: messages name the stub, never the values it holds.
 */
export async function checkEspStubs(ctx: StageContext, session: GuestSession, resolve: DeviceResolver, stubs: Map<string, string>, checked: ReadonlySet<string>): Promise<void> {
  const inspection = ctx.inspection!
  for (const [stub, text] of stubs) {
    const target = espStubTarget(text)
    if (!target || unfollowablePath(target.config)) {
      ctx.warn('FIX_WARNING', `${stub}: a grub.cfg stub whose search/configfile could not be followed; the config it chains to was not checked.`)
      continue
    }
    const prefix = await findMountPrefix(ctx, session, inspection, target.by, target.value)
    if (prefix === undefined) {
      throw new H2KError('H2K_FIX_FAILED', `${stub} searches for a file system (by ${target.by}) that no file system of this guest is: GRUB would not find its config on KVM.`, {
        details: {by: target.by, stub},
      })
    }
    const chained = await readChained(ctx, session, stub, candidates(prefix, target.config), checked)
    if (chained === 'checked') continue
    if (chained.state === 'refused') {
      ctx.warn('FIX_WARNING', `${stub}: the config it chains to is not a regular file of a sane size reached without links; it was not checked.`)
      continue
    }
    if (chained.state === 'absent') {
      throw new H2KError('H2K_FIX_FAILED', `${stub} chains to a config that does not exist: GRUB would stop at its prompt.`, {details: {stub}})
    }
    const {path: config, text: original} = chained
    const result = rewriteGrubCfg(original, resolve)
    for (const warning of result.warnings) ctx.warn('FIX_WARNING', `the config ${stub} chains to: ${warning}`)
    if (result.text !== original) {
      await session.writeFile(config, result.text)
      ctx.changes.record({after: result.text, before: original, path: config, reason: `the config ${stub} chains to; root=/resume= made stable`, stage: STAGE})
    }
    const remaining = findUnstableRoots(result.text)
    if (remaining.length > 0) {
      throw new H2KError('H2K_FIX_FAILED', `The config ${stub} chains to still passes a root= device name virtio changes; the guest would not find its root disk on virtio.`, {
        details: {remaining: remaining.length, stub},
      })
    }
  }
}
