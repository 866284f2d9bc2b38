import type {GuestSession, PipelineStage, StageContext} from '@hyper2kvm/plugin-api'
import {isUnicastMac} from '@hyper2kvm/plugin-api'

import {isSymlink, readBounded, unsafeAncestor} from './guest-queries.js'
import {NETWORK_UNKNOWN} from './inspect-network.js'
import {isFixableLinux} from './linux-applies.js'
import {MAX_NETWORK_FILE_BYTES, type NetworkFile, forgetNetworkFiles, readNetworkFiles} from './network-files.js'
import {type GuestNaming, bindingsOf, namingOf, pinsOf} from './network-model.js'
import {applyTransform} from './record-edit.js'
import {
  type NicPlan,
  type TransformResult,
  VIRTIO_NIC_LINK_PATH,
  decideNetworkdLink,
  ifcfgFileNic,
  ifcfgHasDevice,
  normalizeMac,
  planNics,
  renameInterfaces,
  renamesIn,
  rewriteIfcfg,
  rewriteIfupdown,
  rewriteNetplan,
  rewriteNetworkdNetwork,
  rewriteNmKeyfile,
  rewritePersistentNetRules,
  virtioNicLinkFor,
} from './transforms/index.js'

const STAGE = 'fixer:network'

const REWRITES: Partial<Record<NetworkFile['kind'], (text: string, plan: NicPlan) => TransformResult>> = {
  ifcfg: rewriteIfcfg,
  ifupdown: rewriteIfupdown,
  netplan: rewriteNetplan,
  networkd: rewriteNetworkdNetwork,
  networkmanager: rewriteNmKeyfile,
}

/**
 * keep_macs holds only when the source names a distinct valid unicast MAC for every NIC it has: otherwise the
 * KVM NIC gets a generated MAC, and a guest still bound by MAC would lose its network. Then MACs count as
 * not kept (MAC bindings and pins are rebound by name), with a warning.
 */
function keepsMacs(ctx: StageContext): boolean {
  if ((ctx.job as {keepMacs?: unknown}).keepMacs !== true) return false
  const nics = ctx.source?.vm?.nics ?? []
  const macs = nics.map((nic) => (nic.mac === undefined ? undefined : normalizeMac(nic.mac))).filter((mac): mac is string => mac !== undefined && isUnicastMac(mac))
  if (nics.length > 0 && macs.length === nics.length && new Set(macs).size === macs.length) return true
  const why = nics.length === 0 ? 'the source describes no NIC' : 'not every source NIC has a distinct valid unicast MAC'
  ctx.warn('MAC_BINDINGS_REBOUND', `--keep-macs: ${why}, so the NIC gets a new MAC on KVM; ${STAGE} rebinds the guest's MAC bindings as if MACs were not kept.`)
  return false
}

/**
 * Whether a network file may be written at `path`: every directory on the way a real directory (no link that
 * would send the write elsewhere) and the path itself no symbolic link (not even a dangling one). Says why not.
 */
async function refusesWrite(ctx: StageContext, session: GuestSession, path: string): Promise<boolean> {
  const dir = path.slice(0, path.lastIndexOf('/'))
  const bad = await unsafeAncestor(session, dir)
  // A missing directory (not a link) is created by mkdir-p under a real one: that is safe.
  if (bad !== undefined && ((await isSymlink(session, bad)) || (await session.exists(bad)))) {
    ctx.warn('FIX_WARNING', `${bad} is not a plain directory; ${path} is not written (its network configuration is left as is).`)
    return true
  }
  if (await isSymlink(session, path)) {
    ctx.warn('FIX_WARNING', `${path} is a symbolic link; not written through (its network configuration is left as is).`)
    return true
  }
  return false
}

async function remove(ctx: StageContext, session: GuestSession, file: NetworkFile, reason: string): Promise<void> {
  await session.call('rm', file.path)
  ctx.changes.record({after: null, before: file.text, path: file.path, reason, stage: STAGE})
  ctx.log.info(`${STAGE}: removed ${file.path}`)
}

/** Files beside an ifcfg file that ifup (RHEL) or wicked (SUSE) find by the same name: its routes and rules. */
const ROUTE_PREFIXES = ['route-', 'route6-', 'rule-', 'rule6-', 'ifroute-']

/**
 * The route and rule files of the ifcfg file `ifcfg-<old>` in `dir`: interface names in them follow the plan,
 * and when the ifcfg file moved to `ifcfg-<renamed>` they move with it (else its routes would no longer apply).
 */
async function fixRouteFiles(ctx: StageContext, session: GuestSession, dir: string, old: string, plan: NicPlan, renamed?: string): Promise<void> {
  for (const prefix of ROUTE_PREFIXES) {
    const from = `${dir}/${prefix}${old}`
    const read = await readBounded(session, from, MAX_NETWORK_FILE_BYTES)
    if (read.state === 'absent') continue
    if (read.state === 'refused') {
      ctx.warn('FIX_WARNING', `${from} ${read.why}; refused, left as is (its routes may not apply on KVM).`)
      continue
    }
    const text = renameInterfaces(read.text, plan)
    const to = renamed === undefined ? from : `${dir}/${prefix}${renamed}`
    if (await refusesWrite(ctx, session, to)) continue
    if (to === from) {
      if (text !== read.text) {
        await session.writeFile(to, text)
        ctx.changes.record({after: text, before: read.text, path: to, reason: `${renamesIn(read.text, plan)}: the NIC's name on KVM`, stage: STAGE})
      }
    } else if (await session.exists(to)) {
      ctx.warn('FIX_WARNING', `${from} belongs to a moved ifcfg file, but ${to} already exists; left as is.`)
    } else {
      await session.writeFile(to, text)
      ctx.changes.record({after: text, before: null, path: to, reason: `${from} moved here with its ifcfg file (${old} → ${renamed})`, stage: STAGE})
      await remove(ctx, session, {kind: 'ifcfg', path: from, text: read.text}, `moved to ${to} with its ifcfg file (${old} → ${renamed})`)
    }
  }
}

/**
 * An ifcfg file without DEVICE= names its interface by its own name (SUSE's wicked always does): it moves to
 * ifcfg-<new name>, both sides recorded. Not over an existing file.
 */
async function moveIfcfg(ctx: StageContext, session: GuestSession, file: NetworkFile, plan: NicPlan): Promise<boolean> {
  const old = ifcfgFileNic(file.path)
  const renamed = old === undefined || ifcfgHasDevice(file.text) ? undefined : plan.renames.get(old)
  if (old === undefined || renamed === undefined) return false
  const target = `${file.path.slice(0, file.path.lastIndexOf('/'))}/ifcfg-${renamed}`
  if (await refusesWrite(ctx, session, target)) return true
  if (await session.exists(target)) {
    ctx.warn('FIX_WARNING', `${file.path} names ${old} by its file name, but ${target} already exists; left as is.`)
    return false
  }
  const result = rewriteIfcfg(file.text, plan)
  for (const warning of result.warnings) ctx.warn('FIX_WARNING', `${file.path}: ${warning}`)
  await session.writeFile(target, result.text)
  ctx.changes.record({after: result.text, before: null, path: target, reason: `${file.path} moved here: the file's name names the interface (${old} → ${renamed})`, stage: STAGE})
  await remove(ctx, session, file, `moved to ${target}: the file's name names the interface (${old} → ${renamed})`)
  await fixRouteFiles(ctx, session, file.path.slice(0, file.path.lastIndexOf('/')), old, plan, renamed)
  return true
}

async function fixFile(ctx: StageContext, session: GuestSession, file: NetworkFile, plan: NicPlan): Promise<void> {
  const rewrite = REWRITES[file.kind]
  if (await refusesWrite(ctx, session, file.path)) return
  if (file.kind === 'ifcfg' && (await moveIfcfg(ctx, session, file, plan))) return
  const nic = file.kind === 'ifcfg' ? ifcfgFileNic(file.path) : undefined
  if (nic !== undefined && plan.renames.size > 0) await fixRouteFiles(ctx, session, file.path.slice(0, file.path.lastIndexOf('/')), nic, plan)
  if (rewrite) {
    await applyTransform(ctx, STAGE, file.path, file.text, rewrite(file.text, plan))
  } else if (file.kind === 'networkd-link') {
    const decision = decideNetworkdLink(file.text, plan)
    if (decision.action === 'delete') await remove(ctx, session, file, decision.reason ?? 'stale')
  } else if (file.kind === 'persistent-net') {
    const result = rewritePersistentNetRules(file.text, plan)
    if (result.remove) await remove(ctx, session, file, `stale persistent-net rules: ${[...new Set(result.edits.map((e) => e.reason))].join('; ')}`)
    else await applyTransform(ctx, STAGE, file.path, file.text, result)
  }
}

/**
 * A single NIC rebound to a new name: a .link file makes the virtio NIC get that name whatever slot it is in,
 * on guests whose udev reads .link files. Not with several NICs, configured or in the source VM (a driver match
 * cannot tell them apart), and never over a file that is already there.
 */
async function pinVirtioName(ctx: StageContext, session: GuestSession, plan: NicPlan, naming: GuestNaming): Promise<void> {
  const vmNics = ctx.source?.vm?.nics?.length ?? 0
  const nic = plan.order.length === 1 && vmNics <= 1 ? plan.order[0]! : undefined
  // A NIC known by MAC alone is rebound by name only when its MAC binding was dropped.
  const name = nic === undefined ? undefined : (plan.renames.get(nic) ?? (plan.keepMacs ? undefined : plan.macNames.get(nic)))
  if (name === undefined || naming.scheme !== 'predictable' || !naming.linkFiles) return
  if ((await session.call('is-symlink', VIRTIO_NIC_LINK_PATH)).trim() === 'true' || (await session.exists(VIRTIO_NIC_LINK_PATH))) {
    ctx.warn('FIX_WARNING', `${VIRTIO_NIC_LINK_PATH} already exists; left as is, so the NIC is named by its PCI slot.`)
    return
  }
  const dir = VIRTIO_NIC_LINK_PATH.slice(0, VIRTIO_NIC_LINK_PATH.lastIndexOf('/'))
  if (await refusesWrite(ctx, session, VIRTIO_NIC_LINK_PATH)) return
  const text = virtioNicLinkFor(name)
  await session.call('mkdir-p', dir)
  await session.writeFile(VIRTIO_NIC_LINK_PATH, text)
  ctx.changes.record({after: text, before: null, path: VIRTIO_NIC_LINK_PATH, reason: `the guest's one NIC is configured as ${name}; the virtio NIC gets that name in any PCI slot (matched by its driver)`, stage: STAGE})
}

/**
 * Network: on KVM the guest's NIC is a virtio-net-pci device with another name (enp1s0 on q35, NIC i on root
 * port i+1) and, unless the MACs are kept, another MAC. Every binding to the old name or MAC in netplan,
 * ifupdown, NetworkManager keyfiles, ifcfg-* and systemd-networkd files is rewritten to the name the NIC gets,
 * stale renames by MAC (70-persistent-net.rules, .link files) are removed, and addressing is left as it was.
 */
export const networkFixer: PipelineStage = {
  after: ['fstab'],
  // Not when inspection could not read the network configuration (NETWORK_UNKNOWN): reading it again would fail the job.
  applies: (ctx) => isFixableLinux(ctx) && !ctx.inspection!.risks.some((risk) => risk.code === NETWORK_UNKNOWN),
  description: 'network: rebind netplan, ifupdown, NetworkManager, ifcfg-* and systemd-networkd configs from the VMware NIC name/MAC to the virtio NIC\'s name; remove stale persistent-net rules and .link renames',
  kind: 'fixer',
  name: 'network',
  async run(ctx) {
    const session = await ctx.guest.open()
    const {files, refusals} = await readNetworkFiles(session)
    for (const refusal of refusals) ctx.warn('FIX_WARNING', refusal)
    const bindings = files.flatMap(bindingsOf)
    const pins = files.flatMap(pinsOf)
    if (bindings.length === 0 && pins.length === 0) {
      ctx.log.info(`${STAGE}: no interface bound by name or MAC in the guest's network configuration`)
      return
    }
    const keepMacs = keepsMacs(ctx)
    const naming = await namingOf(session)
    const scheme = naming.scheme
    const sourceMacs = (ctx.source?.vm?.nics ?? []).map((nic) => nic.mac)
    const plan = planNics(bindings, pins, {keepMacs, scheme, sourceMacs})
    const renames = [...plan.renames].map(([from, to]) => `${from} → ${to}`)
    ctx.log.info(`${STAGE}: ${renames.length > 0 ? renames.join(', ') : 'no NIC renamed'} (${scheme} names, MACs ${keepMacs ? 'kept' : 'not kept'})`)
    if (plan.order.length > 1) {
      const bound = plan.order.map((nic) => `${nic} → ${plan.targets.get(nic)}`).join(', ')
      ctx.warn('NIC_ORDER', `The guest configures ${plan.order.length} NICs, bound in their VMware order${sourceMacs.some((mac) => mac !== undefined) ? ' or by the source\'s MACs' : ''} (${bound}); the n-th virtio NIC (on PCIe root port n) gets the n-th name: give the VM its NICs in this order.`)
    }
    const vmNics = ctx.source?.vm?.nics?.length ?? 0
    if (vmNics > 0 && plan.order.length > 0 && vmNics !== plan.order.length) {
      ctx.warn('NIC_ORDER', `The source VM has ${vmNics} NIC(s) but the guest configures ${plan.order.length}; configured NICs the source's MACs do not place are bound to the free virtio NIC names in their VMware order, which may not be the VM's NICs they belonged to: check each NIC's configuration after conversion.`)
    }
    forgetNetworkFiles(session)
    for (const file of files) await fixFile(ctx, session, file, plan)
    await pinVirtioName(ctx, session, plan, naming)
  },
}
