import type {ImageInfo, ToolOptions, ToolResult} from './tool-types.js'

export const STAGE_KINDS = ['loader', 'inspector', 'fixer', 'converter', 'verifier'] as const
export type StageKind = (typeof STAGE_KINDS)[number]

/** The plugin API version this host understands; a registration must state it. */
export const PLUGIN_API_VERSION = 1

export type OutputFormat = 'qcow2' | 'raw' | 'vdi'
export type Compression = 'zstd' | 'zlib'

/**
 * A qemu block-layer options object (the body of a `json:` filename). The top node always names its
 * `driver` (the format), so qemu never probes one.
 */
export interface BlockdevSpec {
  driver: string
  [option: string]: unknown
}

export interface SourceDisk {
  /** How qemu opens this disk: explicit format, explicit protocol, explicit (or null) backing. */
  spec: BlockdevSpec
  /** Human name of the format (vmdk, vhdx, vhd, qcow2, raw). */
  format: string
  /** Variant of the format (monolithicSparse, streamOptimized, dynamic, fixed, differencing, ...). */
  subformat?: string
  /** Where this disk came from, e.g. the OVF disk id or the file name. */
  label?: string
  /** Host files this disk reads; they are never opened for writing. */
  files: string[]
  /** Bytes of data the source holds for this disk (for the free-space estimate); from qemu-img info when absent. */
  allocatedBytes?: number
  /** Filled in by the pipeline from `qemu-img info`. */
  virtualSize?: number
}

export interface NetworkInterface {
  name?: string
  model?: string
  network?: string
  /** The source's MAC address (lower-case, colon-separated), only when it is a valid unicast MAC. */
  mac?: string
}

export interface VmMetadata {
  name?: string
  cpus?: number
  memoryMiB?: number
  firmware?: 'bios' | 'efi'
  os?: string
  nics?: NetworkInterface[]
  /** Disk labels in boot/bus order. */
  diskOrder?: string[]
}

export interface JobWarning {
  code: string
  message: string
  stage?: string
}

/** What a loader turns the user's input into. */
export interface Source {
  /** The path the user gave. */
  input: string
  /** Base name for outputs (VM name or file stem), already safe as a file name. */
  name: string
  format: string
  subformat?: string
  disks: SourceDisk[]
  vm?: VmMetadata
  /** Facts worth reporting (e.g. manifest verified, chain flattened). */
  notes?: string[]
}

/** What a loader's probe sees of an input: enough to recognise it by content. */
export interface ProbeInput {
  /** Absolute path of the input. */
  path: string
  size: number
  isDirectory: boolean
  /** The first bytes of the file (up to 68 KiB: a btrfs superblock is at 64 KiB); empty for directories. */
  head: Buffer
  /** Lower-case extension with the dot, e.g. ".vmdk"; "" if none. */
  extension: string
}

export interface ProbeClaim {
  /** `content` claims (magic bytes, descriptor text) beat `extension` claims. */
  by: 'content' | 'extension'
  format: string
  subformat?: string
}

export interface ProgressUpdate {
  message?: string
  /** 0..100 */
  percent?: number
  bytesDone?: number
  bytesTotal?: number
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
}

/** A file a fixer changed inside the guest, with its text before and after. */
export interface FileChange {
  stage: string
  path: string
  before: string | null
  after: string | null
  reason?: string
  /**
   * For a change recorded without its text (before and after null: a rebuilt image such as an initramfs): its
   * size in bytes before and after (null: absent, or not known — e.g. not rebuilt in a dry run).
   */
  bytes?: {before: number | null; after: number | null}
}

/**
 * A change as the host keeps it (the result's `changes`, `report.json`): what the stage recorded, plus what the
 * host derived from it when it was recorded — for every stage alike, so a stage never computes these itself.
 */
export interface RecordedChange extends FileChange {
  /**
   * Unified diff of before → after (`--- a/<path>`, `+++ b/<path>`; `/dev/null` for a created or deleted
   * file), 3 lines of context. Absent when the change has no text diff; `diffNote` says why.
   */
  diff?: string
  /** Why there is no text diff, in one line: `binary: N bytes → M bytes`, `too large: …`, `no text recorded`. */
  diffNote?: string
  /** Lines the diff adds and removes (with `diff`). */
  linesAdded?: number
  linesRemoved?: number
}

export interface ChangeRecorder {
  record(change: FileChange): void
  readonly all: readonly RecordedChange[]
}

export type FstabMode = 'stabilize-all' | 'bypath-only' | 'noop'
export type InitramfsMode = 'auto' | 'append' | 'rebuild'
export type AccelPreference = 'auto' | 'kvm' | 'tcg'

/** What the guest fixers may do (all on a qcow2 overlay; the source is never written). */
export interface FixSettings {
  /** Master switch: false = conversion only (--no-fix). */
  enabled: boolean
  fstabMode: FstabMode
  grub: boolean
  initramfs: boolean
  /** Drivers made part of the guest's initramfs (default: virtio family + ahci, nvme, sd_mod, dm_mod). */
  initramfsDrivers?: string[]
  /**
   * How fixer:initramfs gives each kernel's image the drivers (--initramfs-mode, `initramfs_mode:`): `append`
   * adds them as an extra cpio member (fails where that cannot be done and verified), `rebuild` runs the
   * guest's own tool, `auto` (default) appends where proved and falls back to the tool (warning
   * INITRAMFS_APPEND_FELL_BACK).
   */
  initramfsMode?: InitramfsMode
  /** A failing fixer becomes a warning instead of failing the job. */
  continueOnError: boolean
  /** Leave VMware Tools' services and modprobe settings as they are (--keep-vmware-tools): fixer:vmware-tools is skipped. */
  keepVmwareTools?: boolean
}

export interface BootSettings {
  /** Boot the output on virtio after converting and require a login prompt (--verify-boot). */
  verify: boolean
  timeoutSeconds: number
  /** Regular expression that counts as a successful boot on the serial console (default: a login prompt). */
  pattern?: string
}

export interface JobSettings {
  input: string
  outputDir: string
  format: OutputFormat
  compress: boolean
  compression: Compression
  name?: string
  overwrite: boolean
  /** Compare each output with its source after converting (`qemu-img compare`). */
  verify: boolean
  checksum: boolean
  /** Accept qcow2/VMDK inputs whose backing files sit inside the input's directory. */
  allowBacking: boolean
  skipSpaceCheck: boolean
  /** Where the job's work directory is created (--work-dir, the daemon's work_dir); default: inside outputDir. */
  workDir?: string
  fix: FixSettings
  boot: BootSettings
  /** Hardware acceleration for the libguestfs appliance and the boot test: auto probes KVM and falls back to TCG. */
  accel: AccelPreference
  /**
   * Options for stages, by stage id (`kind:name`) then key, as given (`--stage-option`, `stage_options:` in job
   * files, manifests and configs). A stage reads its own, validated against its schema with defaults applied,
   * as `ctx.options`.
   */
  stageOptions: Record<string, Record<string, unknown>>
  /** Where each stage option was given (`<stage id>.<key>` → `file:line:column` or `--stage-option`), for error messages. */
  stageOptionSources?: Record<string, string>
  /**
   * Run every qemu process that reads the input in the bubblewrap sandbox (default true). false is
   * --no-sandbox / `sandbox: false`: explicit, warned about in the report, never the daemon's droppers' choice.
   */
  sandbox: boolean
  /** Files written beside the outputs (--emit, `emit:`): `libvirt` writes `<name>.xml`, a libvirt domain for the VM. */
  emit?: Array<'libvirt'>
  /** The domain (and the boot test) keeps the source's NIC MAC addresses (--keep-macs, `keep_macs:`). */
  keepMacs?: boolean
}

export type ExecFunction = (file: string, args: readonly string[], options?: Omit<ToolOptions, 'signal'>) => Promise<ToolResult>

/** A planned output: a disk, the `.part` it is written to, and the final name it gets when the job succeeds. */
export interface OutputPlan {
  disk: SourceDisk
  index: number
  partPath: string
  finalPath: string
}

/** The job's one libguestfs appliance, driven command by command (guestfish --listen / --remote). */
export interface GuestSession {
  /** Run one guestfish command; returns its stdout. Failures arrive as H2KError (H2K_GUEST_FAILED). */
  call(command: string, ...args: string[]): Promise<string>
  /** A guest file's bytes as text, or null when it does not exist. */
  readFile(path: string): Promise<string | null>
  /** Replace a guest file's content (keeps its owner and mode when it exists). */
  writeFile(path: string, content: string): Promise<void>
  exists(path: string): Promise<boolean>
  /** Run a shell script inside the guest root (with /dev, /proc, /sys); returns stdout. */
  sh(script: string): Promise<string>
}

/**
 * Access to the guest for inspectors and fixers. The first open() creates a qcow2 overlay over every
 * source disk (in the work directory) and launches one appliance on them; from then on the disks' specs
 * point at the overlays, so the converter copies the fixed guest and the source is never written.
 */
export interface GuestAccess {
  open(): Promise<GuestSession>
  readonly isOpen: boolean
}

export type Firmware = 'bios' | 'efi'

export interface KernelInfo {
  version: string
  /** virtio_blk is available for this kernel (module or built in). */
  hasVirtio: boolean
  /** virtio_blk is inside this kernel's initramfs (undefined: not checked or no initramfs). */
  virtioInInitramfs?: boolean
  initramfs?: string
}

export interface FstabEntry {
  line: number
  device: string
  mountpoint: string
  fstype: string
  unstable: boolean
}

export interface InspectionRisk {
  code: string
  message: string
}

/** What INSPECT learnt about the guest: read-only facts, the basis for every fix. */
export interface Inspection {
  os: 'linux' | 'windows' | 'unknown' | string
  distro?: string
  product?: string
  version?: string
  arch?: string
  hostname?: string
  root?: string
  /** How the root filesystem was chosen, in words (never interactive). */
  rootChoice?: string
  firmware: Firmware
  bootloader?: string
  bootloaderConfig?: string[]
  kernels: KernelInfo[]
  initramfsTool?: string
  fstab: FstabEntry[]
  /** Mountpoint → appliance device, as libguestfs resolved the guest's fstab. */
  mountpoints: Record<string, string>
  lvm: boolean
  luks: boolean
  raid: boolean
  risks: InspectionRisk[]
  /** VMware's guest tools and the KVM guest agent, as the guest's package database and files show them (Linux guests). */
  vmwareTools?: VmwareToolsFacts
  /** The guest's network configuration: each interface a config file binds, by name and/or MAC (fixer:network rebinds them). */
  network?: {interfaces: NicConfig[]}
  /**
   * The root's disk has a partition table. false: the root filesystem is the whole disk (a bare filesystem
   * image: no partition table, no boot loader; risk NO_BOOTLOADER), or no disk has partitions and no root was found.
   * Optional so inspectors written before it keep compiling: the host reads undefined as partitioned (only
   * `partitioned === false` means "no partition table").
   */
  partitioned?: boolean
}

/** What inspection found of VMware Tools and of qemu-guest-agent. */
export interface VmwareToolsFacts {
  /** The open-vm-tools package is installed (dpkg status; on other guests: its program and service unit are present). */
  openVmTools: boolean
  /** VMware Tools installed from VMware's tarball (/etc/vmware-tools/locations or vmware-uninstall-tools.pl). */
  tarball: boolean
  /** installed; a .deb/.rpm in the guest's package cache (see qemuGuestAgentPackage); or absent. Never downloaded. */
  qemuGuestAgent: 'installed' | 'in-package-cache' | 'absent'
  /** The cached qemu-guest-agent package's path in the guest, when qemuGuestAgent is in-package-cache. */
  qemuGuestAgentPackage?: string
  /** The pieces found, as guest paths (marker files, init scripts, service units, kernel modules, modprobe files). */
  found: string[]
}

/** One interface a guest network config file configures (netplan, ifupdown, NetworkManager keyfile, ifcfg-*, systemd-networkd). */
export interface NicConfig {
  tool: 'netplan' | 'ifupdown' | 'networkmanager' | 'ifcfg' | 'networkd'
  /** The guest file that configures it. */
  file: string
  /** The interface name it binds (a physical NIC name such as ens192 or eth0). */
  name?: string
  /** The MAC address it binds (lower case, colon-separated). */
  mac?: string
  mode: 'static' | 'dhcp' | 'unknown'
}

export interface StageContext {
  readonly job: JobSettings
  readonly jobId: string
  readonly signal: AbortSignal
  /** Run a tool with this job's cancellation signal; failures arrive as H2KError. */
  readonly exec: ExecFunction
  /**
   * `qemu-img info` of an image a stage resolved, run by the host under resource limits and in the job's
   * sandbox (it sees the files the spec names, plus `files`). A damaged image arrives as H2KError
   * (H2K_INPUT_CORRUPT or H2K_INPUT_UNSUPPORTED).
   */
  imageInfo(spec: BlockdevSpec, options?: {files?: readonly string[]}): Promise<ImageInfo>
  readonly log: Logger
  readonly changes: ChangeRecorder
  /** A private directory for this job (on the output file system); removed when the job ends. */
  readonly workDir: string
  /** Report progress; the renderer (terminal, plain lines, daemon events) decides how to show it. */
  report(progress: ProgressUpdate): void
  warn(code: string, message: string): void
  /** Set after LOAD. */
  source?: Source
  /** Set before CONVERT. */
  outputs: OutputPlan[]
  /** Results that verifiers add, keyed by verifier name. */
  verification: Record<string, unknown>
  /** The guest, for inspectors and fixers. */
  readonly guest: GuestAccess
  /** The running stage's own options (see `options` on the stage), validated, defaults applied; {} when it declares none. */
  readonly options: Readonly<Record<string, unknown>>
  /** Set by the inspector. */
  inspection?: Inspection
  /**
   * true under `hyper2kvm inspect --plan`: fixers run on a throw-away overlay to show what they would change,
   * and nothing is converted or written. A fixer still makes its text edits (they are the plan) but may skip
   * steps that only rebuild derived images (an initramfs), recording what it would rebuild instead.
   */
  readonly dryRun: boolean
}

export interface LoaderContext extends StageContext {
  readonly input: ProbeInput
  readonly claim: ProbeClaim
}

interface StageBase {
  /** Lower-case name; the stage id is `kind:name`. */
  name: string
  description?: string
  /** For fixers (and other ordered stages): names of stages of the same kind that must run first. */
  after?: string[]
  /**
   * The options this stage accepts, as a JSON Schema (draft 2020-12 subset that ajv supports) for one object:
   * users give them with `--stage-option <kind:name>.<key>=<value>` or `stage_options: {<kind:name>: {...}}`,
   * the host validates them (and applies the schema's defaults) before anything runs, and the stage reads them
   * as `ctx.options`. A stage without it accepts no options.
   */
  options?: {schema: Record<string, unknown>}
}

export interface LoaderStage extends StageBase {
  kind: 'loader'
  /** Formats this loader reads, for `hyper2kvm plugins`. */
  formats: string[]
  /** Higher runs first among claims of equal strength; ties are broken by id. */
  priority?: number
  probe(input: ProbeInput): ProbeClaim | null | Promise<ProbeClaim | null>
  run(ctx: LoaderContext): Promise<Source>
}

export interface PipelineStage extends StageBase {
  kind: 'inspector' | 'fixer' | 'converter' | 'verifier'
  applies?(ctx: StageContext): boolean | Promise<boolean>
  run(ctx: StageContext): Promise<void>
}

export type Stage = LoaderStage | PipelineStage

/** What a plugin's `hyper2kvm:register` hook returns. */
export interface StageRegistration {
  apiVersion: number
  stages: Stage[]
}

