import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {H2KError, type JobSettings} from '@hyper2kvm/plugin-api'
import {mergeStageOptionLayers, stageOptionLayerOf} from './jobs/stage-option-layer.js'
import {DEFAULT_BOOT_TIMEOUT_SECONDS, defaultJobSettings} from './stages/job-defaults.js'

/** Flags of every command that runs qemu on an input (`convert`, `inspect`, `batch`). */
export const sandboxFlags = {
  sandbox: Flags.boolean({
    allowNo: true,
    default: true,
    description: 'Run qemu-img, qemu-io and the boot test in a bubblewrap sandbox that sees only the input\'s own files and the job\'s work files (needs bwrap and user namespaces). --no-sandbox runs them unsandboxed: explicit, and warned about in the report.',
  }),
}

/** Options for plugin stages (`convert`, `batch`, `inspect`); they win over `stage_options:` of job files and configs. */
export const stageOptionFlag = {
  'stage-option': Flags.string({
    description: 'An option for a stage, <kind:name>.<key>=<value> (repeatable; the value is JSON when it parses as JSON, else text), e.g. fixer:migrated-marker.note=moved. `hyper2kvm plugins` lists the stage ids; each stage\'s schema validates its options before anything runs.',
    multiple: true,
    multipleNonGreedy: true,
  }),
}

/** Flags shared by commands that run the guest appliance (`convert`, `inspect`). */
export const guestFlags = {
  ...sandboxFlags,
  accel: Flags.option({
    default: 'auto' as const,
    description: 'Acceleration for the libguestfs appliance and the boot test. auto: use KVM when it works, else TCG (and say so).',
    options: ['auto', 'kvm', 'tcg'] as const,
  })(),
}

/** The conversion flags of `convert`; the job-file keys of the batch issue map onto the same settings. */
/** Where a job's work directory (decompressed archives, overlays, scratch) is created; convert, batch, and the daemon's work_dir. */
export const workDirFlag = {
  'work-dir': Flags.directory({description: 'Directory (created if missing) in which each job makes its work directory for decompressed archives, overlays and scratch, removed when the job ends. Default: inside the output directory. Put it on a filesystem with room.'}),
}

export const convertFlags = {
  ...workDirFlag,
  ...guestFlags,
  ...stageOptionFlag,
  'allow-backing': Flags.boolean({description: 'Accept qcow2 inputs whose backing files sit in the input directory (the chain is flattened). VMDK and AVHDX chains need no flag.'}),
  'boot-pattern': Flags.string({dependsOn: ['verify-boot'], description: 'Regular expression on the serial console that counts as booted (default: a login prompt).'}),
  // No oclif default here: a default counts as "given" for dependsOn; the settings default applies instead.
  'boot-timeout': Flags.integer({dependsOn: ['verify-boot'], description: `Seconds the boot test waits for the login prompt (default ${DEFAULT_BOOT_TIMEOUT_SECONDS}).`, min: 10}),
  checksum: Flags.boolean({description: 'Record the sha256 of every output.'}),
  compress: Flags.boolean({description: 'Compress the qcow2 output (zstd unless --compression says otherwise).'}),
  compression: Flags.option({description: 'Compression algorithm for qcow2 (implies --compress).', options: ['zstd', 'zlib'] as const})(),
  'continue-on-fix-error': Flags.boolean({description: 'A failing fixer becomes a warning instead of failing the job.'}),
  emit: Flags.option({
    description: 'Also write, beside the outputs: libvirt — <name>.xml, a libvirt domain for the VM (q35, the guest\'s firmware, virtio disks on the outputs, virtio NICs on the network "default", serial console, guest-agent channel; CPUs, memory and NICs from an OVF/OVA, else 2 vCPUs and 2 GiB). Then: virsh define <name>.xml. Repeatable.',
    multiple: true,
    multipleNonGreedy: true,
    options: ['libvirt'] as const,
  })(),
  fix: Flags.boolean({allowNo: true, default: true, description: 'Inspect the guest and fix it for KVM virtio (fstab, GRUB, network, VMware Tools, initramfs). --no-fix converts only.'}),
  'fix-grub': Flags.boolean({allowNo: true, default: true, description: 'Make the boot loader use a stable root= and regenerate its config with the guest\'s own tool.'}),
  format: Flags.option({char: 'f', default: 'qcow2' as const, description: 'Output format.', options: ['qcow2', 'raw', 'vdi'] as const})(),
  'fstab-mode': Flags.option({
    default: 'stabilize-all' as const,
    description: 'stabilize-all: every /dev/sdX, hdX, xvdX, by-path, by-id name → UUID=; bypath-only: only by-path names; noop: leave fstab alone.',
    options: ['stabilize-all', 'bypath-only', 'noop'] as const,
  })(),
  'keep-macs': Flags.boolean({description: 'Give the VM\'s NICs the MAC addresses the source (OVF/OVA) states, in the libvirt domain (--emit libvirt) and the boot test; default: libvirt and qemu choose new ones.'}),
  'keep-vmware-tools': Flags.boolean({description: 'Leave VMware Tools as they are: fixer:vmware-tools (which masks open-vm-tools\' and the tarball install\'s services and comments out modprobe settings that stop KVM drivers) is skipped, with a VMWARE_TOOLS_KEPT warning.'}),
  'initramfs-mode': Flags.option({
    default: 'auto' as const,
    description: 'How each kernel\'s initramfs gets the drivers. append: add them (with a module index from the guest\'s depmod) as an extra cpio member, the original archive untouched — seconds instead of a rebuild under TCG; fails where that cannot be done and verified. rebuild: rebuild it with the guest\'s own tool (update-initramfs, dracut, …). auto: append for initramfs-tools and dracut images, rebuild where appending does not apply (warning INITRAMFS_APPEND_FELL_BACK) and for other tools. The report\'s changes say which was used per kernel.',
    options: ['auto', 'append', 'rebuild'] as const,
  })(),
  'initramfs-drivers': Flags.string({description: 'Comma-separated drivers to put in the initramfs (default: virtio,virtio_ring,virtio_pci,virtio_blk,virtio_scsi,virtio_net,ahci,nvme,sd_mod,dm_mod).'}),
  name: Flags.string({description: 'Base name of the outputs (default: the VM name, or the input file name).'}),
  'output-dir': Flags.directory({char: 'o', default: 'out', description: 'Directory for the outputs and the report (created if missing).'}),
  overwrite: Flags.boolean({description: 'Replace outputs that already exist.'}),
  progress: Flags.boolean({allowNo: true, default: true, description: 'Show progress on stderr.'}),
  'regen-initramfs': Flags.boolean({allowNo: true, default: true, description: 'Add virtio drivers to the initramfs config and rebuild it for every installed kernel.'}),
  'skip-space-check': Flags.boolean({description: 'Do not refuse to start when the free-space estimate says the output will not fit.'}),
  verify: Flags.boolean({description: 'After converting, compare every output with the (fixed) guest it came from (qemu-img compare).'}),
  'verify-boot': Flags.boolean({description: 'Boot the output on virtio (qemu, serial console) and require a login prompt before it is committed.'}),
}

type ConvertFlagValues = {
  [K in keyof typeof convertFlags]?: unknown
}

/**
 * Layers of flag values, lowest first (configuration, job file, command line): a later layer's value wins,
 * except stage options, which merge key by key (`--stage-option fixer:x.a=1` keeps the job file's fixer:x.b).
 */
export function layerFlags(...layers: ReadonlyArray<ConvertFlagValues | undefined>): ConvertFlagValues {
  const merged: ConvertFlagValues = Object.assign({}, ...layers)
  const stageOptions = mergeStageOptionLayers(...layers.map((l) => stageOptionLayerOf(l?.['stage-option'])))
  if (stageOptions === undefined) delete merged['stage-option']
  else merged['stage-option'] = stageOptions
  return merged
}

/** --emit values (flag, job file `emit:`, HYPER2KVM_EMIT) as the settings' list, each once. */
function emitKinds(value: unknown): NonNullable<JobSettings['emit']> {
  const given = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : []
  const kinds = given.map((kind) => String(kind).trim()).filter(Boolean)
  const unknown = kinds.find((kind) => kind !== 'libvirt')
  if (unknown !== undefined) throw new H2KError('H2K_USAGE', `--emit takes libvirt (got ${JSON.stringify(unknown)}).`)
  return kinds.length > 0 ? ['libvirt'] : []
}

/** Job settings from `convert` flags (oclif leaves unset booleans undefined: every check is `=== true`). */
export function settingsFromFlags(input: string, flags: ConvertFlagValues): JobSettings {
  const settings = defaultJobSettings(input, String(flags['output-dir'] ?? 'out'))
  const compress = flags.compress === true || flags.compression !== undefined
  if (compress && flags.format !== undefined && flags.format !== 'qcow2') {
    throw new H2KError('H2K_USAGE', `--compress works with --format qcow2 only (got ${String(flags.format)}).`, {suggestions: ['Drop --compress, or use --format qcow2.']})
  }
  const drivers = typeof flags['initramfs-drivers'] === 'string' ? flags['initramfs-drivers'].split(',').map((d) => d.trim()).filter(Boolean) : undefined
  if (drivers?.some((d) => !/^[\w-]+$/.test(d))) throw new H2KError('H2K_USAGE', `--initramfs-drivers takes module names separated by commas (got "${String(flags['initramfs-drivers'])}").`)
  const stageOptions = stageOptionLayerOf(flags['stage-option'])
  const emit = emitKinds(flags.emit)
  const pattern = typeof flags['boot-pattern'] === 'string' ? flags['boot-pattern'] : undefined
  if (pattern !== undefined) {
    try {
      new RegExp(pattern, 'm')
    } catch (error) {
      throw new H2KError('H2K_USAGE', `--boot-pattern is not a valid regular expression: ${(error as Error).message}`)
    }
  }
  return {
    ...settings,
    accel: (flags.accel as JobSettings['accel'] | undefined) ?? settings.accel,
    allowBacking: flags['allow-backing'] === true,
    boot: {
      pattern,
      timeoutSeconds: typeof flags['boot-timeout'] === 'number' ? flags['boot-timeout'] : settings.boot.timeoutSeconds,
      verify: flags['verify-boot'] === true,
    },
    checksum: flags.checksum === true,
    compress,
    compression: (flags.compression as JobSettings['compression'] | undefined) ?? 'zstd',
    emit,
    fix: {
      continueOnError: flags['continue-on-fix-error'] === true,
      enabled: flags.fix !== false,
      fstabMode: (flags['fstab-mode'] as JobSettings['fix']['fstabMode'] | undefined) ?? settings.fix.fstabMode,
      grub: flags['fix-grub'] !== false,
      initramfs: flags['regen-initramfs'] !== false,
      initramfsDrivers: drivers,
      initramfsMode: (flags['initramfs-mode'] as JobSettings['fix']['initramfsMode'] | undefined) ?? 'auto',
      keepVmwareTools: flags['keep-vmware-tools'] === true,
    },
    format: (flags.format as JobSettings['format'] | undefined) ?? 'qcow2',
    keepMacs: flags['keep-macs'] === true,
    name: typeof flags.name === 'string' ? flags.name : undefined,
    overwrite: flags.overwrite === true,
    sandbox: flags.sandbox !== false,
    skipSpaceCheck: flags['skip-space-check'] === true,
    stageOptions: stageOptions?.values ?? {},
    ...(stageOptions === undefined ? {} : {stageOptionSources: stageOptions.sources}),
    verify: flags.verify === true,
    workDir: typeof flags['work-dir'] === 'string' ? resolve(flags['work-dir']) : undefined,
  }
}
