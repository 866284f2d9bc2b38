import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {H2KError} from '../errors/h2k-error.js'
import {chooseRenderer} from '../render/choose-renderer.js'
import {formatBytes} from '../render/progress-meter.js'
import type {JobResult} from '../stages/job-result.js'
import {loadRegistry} from '../stages/load-registry.js'
import {runJob} from '../stages/run-job.js'
import type {JobSettings} from '../stages/stage-types.js'

export default class Convert extends BaseCommand<typeof Convert> {
  static override args = {
    input: Args.string({description: 'Disk or VM to convert: .vmdk, .ova, .ovf (or its directory), .vhd, .vhdx, .avhdx, .qcow2, .raw/.img, AMI export', required: true}),
  }

  static override description = `Loads the input (format recognised by content), converts every disk with one qemu-img convert into <name>.<fmt>.part, checks it, and renames it into place only when everything succeeded. A report <name>.report.json is written next to the outputs. The input is never written to.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> disk.vmdk', description: 'Convert to ./out/disk.qcow2'},
    {command: '<%= config.bin %> <%= command.id %> vm.ova --output-dir /var/lib/libvirt/images --format raw', description: 'Every disk of an OVA to raw'},
    {command: '<%= config.bin %> <%= command.id %> disk.vhdx --compress', description: 'zstd-compressed qcow2'},
    {command: '<%= config.bin %> <%= command.id %> disk.vmdk --verify --checksum --json', description: 'Compare output with input, sha256 it, print one JSON object'},
  ]

  static override flags = {
    'allow-backing': Flags.boolean({description: 'Accept qcow2 inputs whose backing files sit in the input directory (the chain is flattened).'}),
    checksum: Flags.boolean({description: 'Record the sha256 of every output.'}),
    compress: Flags.boolean({description: 'Compress the qcow2 output (zstd unless --compression says otherwise).'}),
    compression: Flags.option({description: 'Compression algorithm for qcow2 (implies --compress).', options: ['zstd', 'zlib'] as const})(),
    format: Flags.option({char: 'f', default: 'qcow2' as const, description: 'Output format.', options: ['qcow2', 'raw', 'vdi'] as const})(),
    name: Flags.string({description: 'Base name of the outputs (default: the VM name, or the input file name).'}),
    'output-dir': Flags.directory({char: 'o', default: 'out', description: 'Directory for the outputs and the report (created if missing).'}),
    overwrite: Flags.boolean({description: 'Replace outputs that already exist.'}),
    progress: Flags.boolean({allowNo: true, default: true, description: 'Show progress on stderr.'}),
    'skip-space-check': Flags.boolean({description: 'Do not refuse to start when the free-space estimate says the output will not fit.'}),
    verify: Flags.boolean({description: 'After converting, compare every output with its source (qemu-img compare).'}),
  }

  static override summary = 'Convert a VMware, Hyper-V, AWS or raw disk (or a whole OVA/OVF VM) into a KVM disk.'

  public async run(): Promise<JobResult> {
    const {flags} = this
    const compress = flags.compress === true || flags.compression !== undefined
    if (compress && flags.format !== 'qcow2') {
      throw new H2KError('H2K_USAGE', `--compress works with --format qcow2 only (got ${flags.format}).`, {suggestions: ['Drop --compress, or use --format qcow2.']})
    }
    const settings: JobSettings = {
      allowBacking: flags['allow-backing'] === true,
      checksum: flags.checksum === true,
      compress,
      compression: flags.compression ?? 'zstd',
      format: flags.format,
      input: this.args.input,
      name: flags.name,
      outputDir: flags['output-dir'],
      overwrite: flags.overwrite === true,
      skipSpaceCheck: flags['skip-space-check'] === true,
      stageOptions: {},
      verify: flags.verify === true,
    }
    const registry = await loadRegistry(this.config)
    for (const failure of registry.failures) process.stderr.write(`warning ${failure.error.code}: ${failure.error.message}\n`)
    const renderer = chooseRenderer({logLevel: this.logLevel, progress: flags.progress})
    let result: JobResult
    try {
      result = await runJob(settings, {observer: renderer, registry, signal: this.abort.signal})
    } finally {
      await renderer.finish()
    }
    if (!this.jsonEnabled()) {
      for (const output of result.outputs) {
        this.log(`${output.path}  ${output.format}${output.compression ? ` (${output.compression})` : ''}, ${formatBytes(output.virtualSize)} virtual, ${formatBytes(output.bytesOnDisk)} on disk${output.sha256 ? `, sha256 ${output.sha256}` : ''}`)
      }
      this.log(`report: ${result.report}  (${(result.durationMs / 1000).toFixed(1)} s)`)
    }
    return result
  }
}
