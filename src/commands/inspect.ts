import {Args, Flags} from '@oclif/core'
import {tmpdir} from 'node:os'

import {BaseCommand} from '../base-command.js'
import {guestFlags, settingsFromFlags, stageOptionFlag} from '../job-flags.js'
import {chooseRenderer} from '../render/choose-renderer.js'
import type {JobResult} from '@hyper2kvm/plugin-api'
import {type JobResultJson, jobResultJson} from '../output/job-result-json.js'
import {runJob} from '../stages/run-job.js'

export default class Inspect extends BaseCommand<typeof Inspect> {
  static override args = {
    input: Args.string({description: 'Disk or VM to inspect (any input `convert` accepts)', required: true}),
  }

  static override description = `Loads the input, opens it in a libguestfs appliance on a throw-away overlay, and reports what the guest is (OS, distro, version, root and why it was chosen, firmware, boot loader, kernels and their virtio drivers, initramfs tool, fstab) and the risks for booting on KVM virtio. Nothing is written next to the input or anywhere else.`

  static override examples = ['<%= config.bin %> inspect guest.vmdk', '<%= config.bin %> inspect vm.ova --json']

  static override flags = {
    ...guestFlags,
    ...stageOptionFlag,
    progress: Flags.boolean({allowNo: true, default: true, description: 'Show progress on stderr.'}),
  }

  static override summary = 'Inspect a guest before converting it (preflight report; changes nothing).'

  public async run(): Promise<JobResultJson> {
    // Work files (overlays, descriptor copies) go to a private temp directory, removed at the end.
    const settings = settingsFromFlags(this.args.input, {accel: this.flags.accel, 'output-dir': tmpdir(), sandbox: this.flags.sandbox, 'stage-option': this.flags['stage-option']})
    const registry = await this.loadStageRegistry()
    const renderer = await chooseRenderer({logLevel: this.logLevel, progress: this.flags.progress})
    let result: JobResult
    try {
      result = await runJob(settings, {observer: renderer, registry, signal: this.abort.signal, stopAfter: 'inspect'})
    } finally {
      await renderer.finish()
    }
    if (!this.jsonEnabled()) this.printHuman(result)
    return jobResultJson(result)
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
    this.log(`lvm: ${i.lvm ? 'yes' : 'no'}, luks: ${i.luks ? 'yes' : 'no'}, raid: ${i.raid ? 'yes' : 'no'}`)
    if (i.risks.length === 0) this.log('risks: none')
    for (const r of i.risks) this.log(`risk ${r.code}: ${r.message}`)
  }
}
