import {Args, Flags} from '@oclif/core'
import {tmpdir} from 'node:os'

import {BaseCommand} from '../base-command.js'
import {convertFlags, guestFlags, settingsFromFlags, stageOptionFlag} from '../job-flags.js'
import {changeDiffLines} from '../render/change-lines.js'
import {chooseRenderer} from '../render/choose-renderer.js'
import {escapeControl} from '../render/escape-control.js'
import {H2KError, type JobResult} from '@hyper2kvm/plugin-api'
import {type JobResultJson, jobResultJson, planResultJson} from '../output/job-result-json.js'
import {runJob} from '../stages/run-job.js'

/** convert's flags that shape what the fixers do: they mean something to `inspect` only with --plan. */
const PLAN_FLAGS = ['fstab-mode', 'fix-grub', 'regen-initramfs', 'initramfs-drivers', 'initramfs-mode'] as const

export default class Inspect extends BaseCommand<typeof Inspect> {
  static override args = {
    input: Args.string({description: 'Disk or VM to inspect (any input `convert` accepts)', required: true}),
  }

  static override description = `Loads the input, opens it in a libguestfs appliance on a throw-away overlay, and reports what the guest is (OS, distro, version, root and why it was chosen, firmware, boot loader, kernels and their virtio drivers, initramfs tool, fstab, VMware Tools and qemu-guest-agent, the interfaces its network configuration binds) and the risks for booting on KVM virtio. Nothing is written next to the input or anywhere else.

With --plan the fixers run too, on that throw-away overlay, and the command shows what they would change: every file with its unified diff (--json: plan.changes). Initramfs images are not rebuilt in a plan (that is the slow part under TCG); the plan says which ones would be. No output disk or report is written and the input is not touched.`

  static override examples = [
    '<%= config.bin %> inspect guest.vmdk',
    '<%= config.bin %> inspect vm.ova --json',
    {command: '<%= config.bin %> inspect guest.vmdk --plan', description: 'What convert would change in the guest, as diffs (a dry run)'},
    {command: '<%= config.bin %> inspect guest.vmdk --plan --fstab-mode bypath-only --no-fix-grub --json', description: 'The plan of a convert with these fix flags, as JSON'},
  ]

  static override flags = {
    ...guestFlags,
    ...stageOptionFlag,
    plan: Flags.boolean({description: 'Also run the fixers as a dry run on the throw-away overlay and show what they would change (unified diffs); writes nothing.', helpGroup: 'PLAN'}),
    // convert's own fix flags, so a plan shows what that convert would do; listed under PLAN, refused without --plan.
    'fix-grub': Flags.boolean({allowNo: true, default: true, description: convertFlags['fix-grub'].description, helpGroup: 'PLAN'}),
    'fstab-mode': Flags.option({default: 'stabilize-all' as const, description: convertFlags['fstab-mode'].description, helpGroup: 'PLAN', options: ['stabilize-all', 'bypath-only', 'noop'] as const})(),
    'initramfs-drivers': Flags.string({description: convertFlags['initramfs-drivers'].description, helpGroup: 'PLAN'}),
    'initramfs-mode': Flags.option({default: 'auto' as const, description: convertFlags['initramfs-mode'].description, helpGroup: 'PLAN', options: ['auto', 'append', 'rebuild'] as const})(),
    progress: Flags.boolean({allowNo: true, default: true, description: 'Show progress on stderr.'}),
    'regen-initramfs': Flags.boolean({allowNo: true, default: true, description: convertFlags['regen-initramfs'].description, helpGroup: 'PLAN'}),
  }

  static override summary = 'Inspect a guest before converting it (preflight report; changes nothing); --plan shows what the fixers would change.'

  public async run(): Promise<JobResultJson> {
    const plan = this.flags.plan
    const stray = PLAN_FLAGS.filter((name) => name in this.explicitFlags)
    if (!plan && stray.length > 0) {
      const given = stray.map((n) => `--${n}`).join(', ')
      throw new H2KError('H2K_USAGE', `${given} ${stray.length === 1 ? 'shapes' : 'shape'} what the fixers do, and inspect runs them only with --plan.`, {
        suggestions: ['Add --plan to see what the fixers would change with these settings, or leave them out.'],
      })
    }
    // Work files (overlays, descriptor copies) go to a private temp directory, removed at the end.
    const settings = settingsFromFlags(this.args.input, {
      accel: this.flags.accel,
      'fix-grub': this.flags['fix-grub'],
      'fstab-mode': this.flags['fstab-mode'],
      'initramfs-drivers': this.flags['initramfs-drivers'],
      'initramfs-mode': this.flags['initramfs-mode'],
      'output-dir': tmpdir(),
      'regen-initramfs': this.flags['regen-initramfs'],
      sandbox: this.flags.sandbox,
      'stage-option': this.flags['stage-option'],
    })
    const registry = await this.loadStageRegistry()
    const renderer = await chooseRenderer({logLevel: this.logLevel, progress: this.flags.progress})
    let result: JobResult
    try {
      result = await runJob(settings, {observer: renderer, registry, signal: this.abort.signal, stopAfter: plan ? 'fix' : 'inspect'})
    } finally {
      await renderer.finish()
    }
    if (!this.jsonEnabled()) {
      this.printHuman(result)
      if (plan) this.printPlan(result)
    }
    return plan ? planResultJson(result) : jobResultJson(result)
  }

  /**
   * Every human line is escaped (tabs kept): nearly all of them quote the guest — its hostname, fstab devices and
   * mountpoints, boot loader arguments in risks, the plan's diffs — and the guest may be hostile.
   */
  public override log(message = '', ...args: unknown[]): void {
    super.log(escapeControl(message, {keepTab: true}), ...args)
  }

  private printPlan(result: JobResult): void {
    if (result.changes.length === 0) {
      this.log('plan: the fixers would change nothing')
      return
    }
    this.log(`plan: ${result.changes.length} change(s) the fixers would make (a dry run on a throw-away overlay; nothing was written)`)
    for (const change of result.changes) for (const line of changeDiffLines(change)) this.log(line)
  }

  private printHuman(result: JobResult): void {
    const i = result.inspection
    this.log(`input: ${result.input.path} (${result.input.format}${result.input.subformat ? `, ${result.input.subformat}` : ''})`)
    if (!i) {
      this.log('guest: not inspected (no disk holds a partition table or filesystem)')
      return
    }
    this.log(`guest: ${i.product ?? i.os}${i.distro ? ` [${i.distro} ${i.version ?? ''}]` : ''}${i.arch ? ` ${i.arch}` : ''}${i.hostname ? `, hostname ${i.hostname}` : ''}`)
    this.log(`root: ${i.root ?? 'none'} (${i.rootChoice ?? ''})`)
    this.log(`firmware: ${i.firmware}; boot loader: ${i.bootloader ?? (i.partitioned === false ? 'none (no partition table)' : 'unknown')}; initramfs tool: ${i.initramfsTool ?? 'none'}`)
    for (const k of i.kernels) this.log(`kernel ${k.version}: virtio ${k.hasVirtio ? 'available' : 'MISSING'}, in initramfs: ${k.virtioInInitramfs === undefined ? 'unknown' : k.virtioInInitramfs ? 'yes' : 'no'}`)
    for (const e of i.fstab) this.log(`fstab ${e.mountpoint} ← ${e.device}${e.unstable ? '  (unstable name)' : ''}`)
    for (const n of i.network?.interfaces ?? []) this.log(`nic ${[n.name, n.mac].filter(Boolean).join(' ')}: ${n.mode} (${n.tool}, ${n.file})`)
    this.log(`lvm: ${i.lvm ? 'yes' : 'no'}, luks: ${i.luks ? 'yes' : 'no'}, raid: ${i.raid ? 'yes' : 'no'}`)
    const t = i.vmwareTools
    if (t) this.log(`vmware tools: open-vm-tools ${t.openVmTools ? 'yes' : 'no'}, tarball ${t.tarball ? 'yes' : 'no'}; qemu-guest-agent: ${t.qemuGuestAgent}${t.qemuGuestAgentPackage ? ` (${t.qemuGuestAgentPackage})` : ''}`)
    if (i.risks.length === 0) this.log('risks: none')
    for (const r of i.risks) this.log(`risk ${r.code}: ${r.message}`)
  }
}
