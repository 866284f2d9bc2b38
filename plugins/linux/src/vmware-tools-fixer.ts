import type {GuestSession, PipelineStage, StageContext, VmwareToolsFacts} from '@hyper2kvm/plugin-api'

import {isSymlink, listDir, readBounded, unsafeAncestor} from './guest-queries.js'
import {isFixableLinux} from './linux-applies.js'
import {applyTransform} from './record-edit.js'
import {type DisableTally, ServiceDisabler} from './service-disabler.js'
import {disableModprobeSettings} from './transforms/index.js'
import {OPEN_VM_TOOLS_SERVICES, TARBALL_MODULES, TARBALL_SERVICES} from './vmware-tools-facts.js'

const STAGE = 'fixer:vmware-tools'
const MODPROBE_DIR = '/etc/modprobe.d'
/** A modprobe file is a few lines; one larger than this is not read. */
const MODPROBE_MAX_BYTES = 256 * 1024
/** More files than this in /etc/modprobe.d is not a real system's: the rest are not read. */
const MODPROBE_MAX_FILES = 256

function whatIsInstalled(tools: VmwareToolsFacts): string {
  return [tools.openVmTools ? 'open-vm-tools' : '', tools.tarball ? 'VMware Tools from VMware\'s tarball' : ''].filter(Boolean).join(' and ')
}

/** Whether the guest can have a KVM guest agent without a download, and how. */
export function agentAdvice(tools: VmwareToolsFacts): string {
  if (tools.qemuGuestAgent === 'installed') return 'qemu-guest-agent is installed.'
  const cached = tools.qemuGuestAgentPackage
  if (tools.qemuGuestAgent === 'in-package-cache' && cached) {
    const command = cached.endsWith('.deb') ? `apt install ${cached}` : cached.startsWith('/var/cache/zypp/') ? `zypper install ${cached}` : `dnf install ${cached}`
    return `qemu-guest-agent is in the guest's package cache: install it with \`${command}\` after the first boot.`
  }
  return 'qemu-guest-agent is neither installed nor in the guest\'s package cache (hyper2kvm never downloads): install it from the distribution\'s repositories after the first boot.'
}

/** The services of these names that inspection found (unit files, aliases, SysV scripts). */
function foundServices(tools: VmwareToolsFacts, names: readonly string[]): string[] {
  const found = new Set(tools.found.filter((p) => p.includes('/systemd/') || p.includes('init.d/')).map((p) => p.slice(p.lastIndexOf('/') + 1).replace(/\.service$/, '')))
  return names.filter((name) => found.has(name))
}

/** /etc/modprobe.d/*.conf and /etc/modprobe.conf: settings that stop KVM's drivers, and VMware Tools' own, commented out. */
async function fixModprobe(ctx: StageContext, session: GuestSession): Promise<{lines: number; files: number}> {
  const paths: string[] = []
  if ((await session.exists(MODPROBE_DIR)) || (await isSymlink(session, MODPROBE_DIR))) {
    const bad = await unsafeAncestor(session, MODPROBE_DIR)
    if (bad === undefined) {
      const names = (await listDir(session, MODPROBE_DIR)).filter((n) => /^[A-Za-z0-9][A-Za-z0-9._+-]*\.conf$/.test(n)).sort()
      if (names.length > MODPROBE_MAX_FILES) ctx.warn('FIX_WARNING', `${MODPROBE_DIR} holds more than ${MODPROBE_MAX_FILES} files; only the first ${MODPROBE_MAX_FILES} were looked at.`)
      paths.push(...names.slice(0, MODPROBE_MAX_FILES).map((n) => `${MODPROBE_DIR}/${n}`))
    } else ctx.warn('FIX_WARNING', `${bad} is a symbolic link or not a directory: the modprobe settings were not looked at.`)
  }
  if ((await session.exists('/etc/modprobe.conf')) || (await isSymlink(session, '/etc/modprobe.conf'))) paths.push('/etc/modprobe.conf')
  let lines = 0
  let files = 0
  for (const path of paths) {
    const vmwareOwned = /^vmware[-_]/.test(path.slice(path.lastIndexOf('/') + 1))
    const read = await readBounded(session, path, MODPROBE_MAX_BYTES, {followLinks: true})
    if (read.state === 'refused') {
      if (vmwareOwned) ctx.warn('FIX_WARNING', `${path} ${read.why}; it was not read or changed.`)
      continue
    }
    if (read.state === 'absent') continue
    const result = disableModprobeSettings(read.text, {drivers: ctx.job.fix.initramfsDrivers, vmwareOwned})
    if (result.edits.length === 0) continue
    if (await isSymlink(session, path)) {
      ctx.warn('FIX_WARNING', `${path} is a symbolic link; its ${result.edits.length} setting(s) that would hurt on KVM were left as they are (nothing is written through a link).`)
      continue
    }
    if (await applyTransform(ctx, STAGE, path, read.text, result)) {
      lines += result.edits.length
      files++
    }
  }
  return {files, lines}
}

function summary(tools: VmwareToolsFacts, tally: DisableTally, modprobe: {lines: number; files: number}): string {
  const done = [
    tally.masked.length > 0 ? `masked ${tally.masked.join(', ')}` : '',
    tally.disabledLinks > 0 ? `disabled ${tally.disabledLinks} start/enablement link(s)` : '',
    modprobe.lines > 0 ? `commented out ${modprobe.lines} modprobe line(s) in ${modprobe.files} file(s)` : '',
  ].filter(Boolean)
  const modules = [...new Set(tools.found.filter((p) => /\.ko(\.\w+)?$/.test(p)).map((p) => p.slice(p.lastIndexOf('/') + 1).replace(/\.ko(\.\w+)?$/, '')))].filter((m) => TARBALL_MODULES.has(m))
  return [
    `${whatIsInstalled(tools)}: ${done.length > 0 ? done.join('; ') : 'nothing needed changing'}`,
    tally.refused > 0 ? `; ${tally.refused} item(s) left as they were (see the warnings)` : '',
    tools.openVmTools ? '; the open-vm-tools package stays installed' : '',
    tools.tarball ? `; the tarball install is not removed (vmware-uninstall-tools.pl in the guest does that)${modules.length > 0 ? `, its kernel modules ${modules.join(', ')} stay (they bind only to VMware's devices)` : ''}` : '',
    `. ${agentAdvice(tools)}`,
  ].join('')
}

/**
 * fixer:vmware-tools: on KVM, VMware Tools' services fail or wait for a VMware host, and the tarball's
 * modprobe settings can keep KVM's own drivers from loading. Masks/disables those services (open-vm-tools'
 * package stays installed), comments out the modprobe settings, records each change, and says in one
 * warning what was done and whether qemu-guest-agent can be had without a download. --keep-vmware-tools
 * skips it (and says so).
 */
export const vmwareToolsFixer: PipelineStage = {
  after: ['fstab'],
  applies(ctx) {
    const tools = ctx.inspection?.vmwareTools
    if (!isFixableLinux(ctx) || !tools || (!tools.openVmTools && !tools.tarball)) return false
    if (ctx.job.fix.keepVmwareTools === true) {
      ctx.warn('VMWARE_TOOLS_KEPT', `${whatIsInstalled(tools)} left as installed: fixer:vmware-tools skipped (--keep-vmware-tools / keep_vmware_tools). ${agentAdvice(tools)}`)
      return false
    }
    return true
  },
  description: 'VMware Tools: mask/disable open-vm-tools\' and the tarball install\'s services, comment out modprobe settings that stop KVM drivers; report qemu-guest-agent availability (--keep-vmware-tools skips it)',
  kind: 'fixer',
  name: 'vmware-tools',
  async run(ctx) {
    const session = await ctx.guest.open()
    const tools = ctx.inspection!.vmwareTools!
    const tally: DisableTally = {disabledLinks: 0, masked: [], refused: 0}
    const disabler = new ServiceDisabler(ctx, session, STAGE)
    const groups: Array<[readonly string[], string]> = []
    if (tools.openVmTools) groups.push([OPEN_VM_TOOLS_SERVICES, 'open-vm-tools, which only works on VMware'])
    if (tools.tarball) groups.push([TARBALL_SERVICES, 'VMware Tools from the tarball, which fail on KVM'])
    for (const [names, why] of groups) {
      for (const service of foundServices(tools, names)) {
        ctx.report({message: `disabling ${service}`})
        await disabler.mask(service, why, tally)
        await disabler.disableSysv(service, why, tally)
      }
    }
    const modprobe = await fixModprobe(ctx, session)
    const message = summary(tools, tally, modprobe)
    ctx.warn('VMWARE_TOOLS_DISABLED', message)
    ctx.log.info(`${STAGE}: ${message}`)
  },
}
