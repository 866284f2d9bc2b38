import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {H2KError, type JobResult} from '@hyper2kvm/plugin-api'
import {loadJobPlan} from '../jobs/job-plan.js'
import {convertFlags, layerFlags, settingsFromFlags} from '../job-flags.js'
import {changeSummaryLine} from '../render/change-lines.js'
import {chooseRenderer} from '../render/choose-renderer.js'
import {formatBytes} from '../render/progress-meter.js'
import {type JobResultJson, jobResultJson} from '../output/job-result-json.js'
import {runJob} from '../stages/run-job.js'

export default class Convert extends BaseCommand<typeof Convert> {
  static override args = {
    input: Args.string({description: 'Disk or VM to convert: .vmdk, .ova, .ovf (or its directory), .vhd, .vhdx, .avhdx, .qcow2, .raw/.img, AMI export (optional with --job)'}),
  }

  static override description = `Loads the input (format recognised by content), inspects the guest and fixes it for KVM virtio on a qcow2 overlay (fstab, GRUB, network, VMware Tools, initramfs), converts every disk with one qemu-img convert into <name>.<fmt>.part, checks it, and renames it into place only when everything succeeded. A report <name>.report.json is written next to the outputs (and <name>.xml, a libvirt domain, with --emit libvirt), with every changed guest file (before, after and a unified diff); the human output lists them one line each (path, stage, +added -removed lines). "hyper2kvm inspect --plan" shows the same changes without converting. The input is never written to.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> disk.vmdk', description: 'Convert to ./out/disk.qcow2'},
    {command: '<%= config.bin %> <%= command.id %> vm.ova --output-dir /var/lib/libvirt/images --format raw', description: 'Every disk of an OVA to raw'},
    {command: '<%= config.bin %> <%= command.id %> disk.vhdx --compress', description: 'zstd-compressed qcow2'},
    {command: '<%= config.bin %> <%= command.id %> disk.vmdk --verify --checksum --json', description: 'Compare output with input, sha256 it, print one JSON object'},
    {command: '<%= config.bin %> <%= command.id %> guest.ova --verify-boot', description: 'Fix the guest for virtio, convert, then prove it boots on virtio'},
    {command: '<%= config.bin %> <%= command.id %> guest.ova --emit libvirt --keep-macs --output-dir /var/lib/libvirt/images', description: 'Also write guest.xml, a libvirt domain with the OVF\'s CPUs, memory and NIC MACs; then: virsh define guest.xml'},
    {command: '<%= config.bin %> <%= command.id %> guest.vmdk --fstab-mode bypath-only --no-regen-initramfs --no-fix-grub', description: 'Only stabilize by-path names in fstab'},
    {command: '<%= config.bin %> <%= command.id %> guest.vmdk --no-fix', description: 'Conversion only, no guest changes'},
    {command: '<%= config.bin %> <%= command.id %> --job my-vm-job.yaml --format raw', description: 'Settings from a job file; flags given on the command line win'},
    {command: '<%= config.bin %> <%= command.id %> guest.vmdk --stage-option fixer:migrated-marker.note=moved', description: 'An option for a plugin\'s stage (`hyper2kvm plugins` lists the stage ids)'},
  ]

  static override flags = {
    ...convertFlags,
    job: Flags.file({description: 'Job file (YAML or JSON, schemas/job.schema.json) with the input and settings; command-line flags override it.', exists: false}),
  }

  static override summary = 'Convert a VMware, Hyper-V, AWS or raw disk (or a whole OVA/OVF VM) into a KVM disk.'

  public async run(): Promise<JobResultJson> {
    const settings = await this.settings()
    const registry = await this.loadStageRegistry()
    const renderer = await chooseRenderer({logLevel: this.logLevel, progress: this.flags.progress})
    let result: JobResult
    try {
      result = await runJob(settings, {observer: renderer, registry, signal: this.abort.signal})
    } finally {
      await renderer.finish()
    }
    if (!this.jsonEnabled()) {
      // One line per changed guest file (the diffs are in --json and the report).
      for (const change of result.changes) this.log(changeSummaryLine(change))
      for (const output of result.outputs) {
        this.log(`${output.path}  ${output.format}${output.compression ? ` (${output.compression})` : ''}, ${formatBytes(output.virtualSize)} virtual, ${formatBytes(output.bytesOnDisk)} on disk${output.sha256 ? `, sha256 ${output.sha256}` : ''}`)
      }
      if (result.libvirtXml) this.log(`libvirt domain: ${result.libvirtXml}  (virsh define ${result.libvirtXml})`)
      this.log(`report: ${result.report}  (${(result.durationMs / 1000).toFixed(1)} s)`)
    }
    return jobResultJson(result)
  }

  /** From the flags, or from --job with the explicitly given flags (and an input argument) on top. */
  private async settings() {
    const {input} = this.args
    if (this.flags.job === undefined) {
      if (input === undefined) throw new H2KError('H2K_USAGE', 'Missing the input to convert (or --job <file>).', {suggestions: ['hyper2kvm convert disk.vmdk', 'hyper2kvm convert --job my-vm-job.yaml']})
      return settingsFromFlags(input, layerFlags((await this.effectiveConfig()).flags, this.explicitFlags))
    }
    const {job, ...overrides} = this.explicitFlags
    const plan = await loadJobPlan(String(job), {defaults: (await this.effectiveConfig()).flags, overrides})
    if (plan.jobs.length !== 1) {
      throw new H2KError('H2K_USAGE', `${plan.file} holds ${plan.jobs.length} jobs; convert --job runs one.`, {suggestions: [`hyper2kvm batch ${plan.file}`]})
    }
    const settings = plan.jobs[0]!.settings
    return input === undefined ? settings : {...settings, input}
  }
}
