import {basename, extname, join, resolve} from 'node:path'

import {H2KError, isErrorCode, isH2KError, type JobSettings} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {realOrSelf} from '../fs/real-or-self.js'
import {parseWindow, type WindowSpec} from '../schedule/time-window.js'
import {convertFlags, layerFlags, settingsFromFlags} from '../job-flags.js'
import type {SourceDocument, Violation} from './document.js'
import {documentStageOptions, mergeStageOptionLayers} from './stage-option-layer.js'
import type {PolicyKeys} from '../daemon/job-policy.js'

/** The keys of one job in a job file (schemas/job.schema.json); a batch's top level holds their defaults. */
export interface JobEntry {
  input?: string
  output_dir?: string
  output_format?: JobSettings['format']
  out_format?: JobSettings['format']
  compress?: boolean
  compression?: JobSettings['compression']
  flatten?: boolean
  fix?: boolean
  fstab_mode?: JobSettings['fix']['fstabMode']
  regen_initramfs?: boolean
  fix_grub?: boolean
  verify_boot?: boolean
  name?: string
  /** Daemon only (README "Time windows"): when the job may start, what happens when the window closes, the emergency override. */
  window?: WindowSpec
  window_end?: 'cancel' | 'finish'
  override_window?: boolean
  initramfs_drivers?: string[]
  initramfs_mode?: JobSettings['fix']['initramfsMode']
  overwrite?: boolean
  /** false: run qemu unsandboxed (--no-sandbox). */
  sandbox?: boolean
  /** true: leave VMware Tools alone (--keep-vmware-tools). */
  keep_vmware_tools?: boolean
  /** Options for stages by stage id (kind:name); a batch job's keys override the top level's, key by key. */
  stage_options?: Record<string, Record<string, unknown>>
  /** Files written beside the outputs (--emit): `libvirt`. */
  emit?: Array<'libvirt'>
  /** --keep-macs. */
  keep_macs?: boolean
  /** Daemon and API only: jobs this one waits for (names in the batch, or job ids). */
  depends_on?: string[]
  /** Daemon and API only: this job's retry policy. */
  retry?: PolicyKeys['retry']
}

/** Flag values in the shape `convert` parses them; job files, manifests and configs map onto these. */
export type FlagValues = {[K in keyof typeof convertFlags]?: unknown}

interface BatchFile extends JobEntry {
  jobs?: JobEntry[]
  concurrency?: number
  continue_on_error?: boolean
  restrict_inputs_to?: string
}

/** Manifest v1.0 (schemas/manifest.schema.json). */
export interface Manifest {
  version: '1.0'
  /** Options for stages by stage id (kind:name), as in job files. */
  stage_options?: Record<string, Record<string, unknown>>
  pipeline: {
    load: {source_type?: string; source_path: string}
    inspect?: {enabled?: boolean}
    fix?: {
      enabled?: boolean
      fstab?: {enabled?: boolean; mode?: JobSettings['fix']['fstabMode']}
      grub?: {enabled?: boolean}
      initramfs?: {enabled?: boolean; regenerate?: boolean; drivers?: string[]}
      vmware_tools?: {enabled?: boolean}
    }
    convert?: {output_format?: JobSettings['format']; compress?: boolean; compression?: JobSettings['compression']; output_dir?: string; output_name?: string; overwrite?: boolean}
    validate?: {enabled?: boolean; compare?: boolean; boot_test?: boolean}
  }
}

export interface PlannedJob {
  /** Unique within the plan: the `name` key, or the input's file name without extension. */
  name: string
  settings: JobSettings
  /** The job's own scheduling keys (depends_on, retry) as written: the daemon turns them into a JobPolicy. */
  keys?: PolicyKeys
  /** The input as the document wrote it (before resolving), e.g. to require an absolute path from the API. */
  inputAsWritten?: string
}

export interface JobPlan {
  kind: 'job' | 'batch' | 'manifest'
  file: string
  jobs: PlannedJob[]
  /** From the file (`concurrency`), 1 when absent. */
  concurrency: number
  /** From the file (`continue_on_error`), true when absent. */
  continueOnError: boolean
  /** Manifests: where `<manifest>.report.json` is written. */
  reportFile?: string
  /** The top level's scheduling keys (retry, window keys) a batch's jobs inherit. */
  batchKeys?: PolicyKeys
}

export interface PlanOptions {
  /** Flag values that override the file (explicit command-line flags). */
  overrides?: FlagValues
  /** Flag values the file overrides (configuration defaults). */
  defaults?: FlagValues
  /** Resolve relative paths against this directory instead of the file's (the daemon plans a claimed file as if it were still where it was dropped). */
  baseDir?: string
}

/**
 * THE mapping from job-file keys to `convert` flag values (and so, through settingsFromFlags, to
 * JobSettings): one place for convert --job, batch, manifests and the daemon. Relative paths resolve
 * against `baseDir` (the job file's directory).
 */
export function entryToFlags(entry: JobEntry, baseDir: string): FlagValues {
  const flags: FlagValues = {}
  const format = entry.output_format ?? entry.out_format
  if (format !== undefined) flags.format = format
  if (entry.output_dir !== undefined) flags['output-dir'] = resolve(baseDir, entry.output_dir)
  if (entry.compress !== undefined) flags.compress = entry.compress
  if (entry.compression !== undefined) flags.compression = entry.compression
  if (entry.fix !== undefined) flags.fix = entry.fix
  if (entry.fstab_mode !== undefined) flags['fstab-mode'] = entry.fstab_mode
  if (entry.regen_initramfs !== undefined) flags['regen-initramfs'] = entry.regen_initramfs
  if (entry.fix_grub !== undefined) flags['fix-grub'] = entry.fix_grub
  if (entry.verify_boot !== undefined) flags['verify-boot'] = entry.verify_boot
  if (entry.name !== undefined) flags.name = entry.name
  if (entry.initramfs_drivers !== undefined) flags['initramfs-drivers'] = entry.initramfs_drivers.join(',')
  if (entry.initramfs_mode !== undefined) flags['initramfs-mode'] = entry.initramfs_mode
  if (entry.overwrite !== undefined) flags.overwrite = entry.overwrite
  if (entry.sandbox !== undefined) flags.sandbox = entry.sandbox
  if (entry.keep_vmware_tools !== undefined) flags['keep-vmware-tools'] = entry.keep_vmware_tools
  if (entry.emit !== undefined) flags.emit = entry.emit
  if (entry.keep_macs !== undefined) flags['keep-macs'] = entry.keep_macs
  // `flatten`: chains are always flattened into one output disk; the key is accepted for compatibility.
  return flags
}

/** Manifest v1.0 → the same job-file keys (plus `verify`), so it runs through the same mapping. */
export function manifestToFlags(manifest: Manifest, baseDir: string): {input: string; flags: FlagValues} {
  const {entry, verify} = manifestToEntry(manifest)
  const flags = entryToFlags(entry, baseDir)
  if (verify !== undefined) flags.verify = verify
  return {flags, input: resolve(baseDir, manifest.pipeline.load.source_path)}
}

/** Manifest v1.0 → job-file keys (input as written), and `validate.compare` (no job-file key: --verify). */
export function manifestToEntry(manifest: Manifest): {entry: JobEntry; verify?: boolean} {
  const {convert = {}, fix = {}, inspect = {}, load, validate = {}} = manifest.pipeline
  const entry: JobEntry = {
    input: load.source_path,
    compress: convert.compress,
    compression: convert.compression,
    fix: inspect.enabled === false || fix.enabled === false ? false : undefined,
    fix_grub: fix.grub?.enabled,
    fstab_mode: fix.fstab?.enabled === false ? 'noop' : fix.fstab?.mode,
    initramfs_drivers: fix.initramfs?.drivers,
    keep_vmware_tools: fix.vmware_tools?.enabled === undefined ? undefined : !fix.vmware_tools.enabled,
    name: convert.output_name,
    output_dir: convert.output_dir ?? 'out',
    output_format: convert.output_format,
    overwrite: convert.overwrite,
    regen_initramfs: fix.initramfs?.enabled === false ? false : fix.initramfs?.regenerate,
    verify_boot: validate.enabled === false ? false : validate.boot_test,
  }
  return {entry, ...(validate.enabled !== false && validate.compare !== undefined ? {verify: validate.compare} : {})}
}

/** `vm.json` → `vm.report.json` next to it. */
export function manifestReportPath(file: string): string {
  const ext = extname(file)
  return join(resolve(file, '..'), `${basename(file, ext)}.report.json`)
}

function isManifest(value: unknown): boolean {
  return typeof value === 'object' && value !== null && ('version' in value || 'pipeline' in value)
}

/** What a file is, by its top-level keys. */
export function documentKind(value: unknown): 'manifest' | 'daemon' | 'job' {
  if (isManifest(value)) return 'manifest'
  if (typeof value === 'object' && value !== null && ['command', 'daemon', 'watch_dir', 'workflow_mode', 'manifest_workflow_mode', 'max_concurrent_jobs'].some((k) => k in value)) return 'daemon'
  return 'job'
}


/**
 * Read a job file (single job or `jobs:` batch) or a manifest v1.0, validate it against its schema and
 * turn it into JobSettings, refusing everything that is wrong before any job starts.
 */
export async function loadJobPlan(path: string, given: PlanOptions = {}): Promise<JobPlan> {
  return planJobDocument(await readDocument(path), normalizeOptions(given))
}

async function readDocument(path: string): Promise<SourceDocument> {
  // Loaded here, not at the top: configuration loading imports this module for documentKind/entryToFlags on every command.
  const {SourceDocument} = await import('./document.js')
  return SourceDocument.read(path)
}

function normalizeOptions(given: PlanOptions): PlanOptions {
  // A malformed --stage-option is the command line's fault (H2K_USAGE), not the file's: parsed before any job.
  return given.overrides === undefined ? given : {...given, overrides: layerFlags(given.overrides)}
}

/** A job file or manifest already read (a file, or a parsed API request body) → its plan; see loadJobPlan. */
export async function planJobDocument(doc: SourceDocument, options: PlanOptions = {}): Promise<JobPlan> {
  if (documentKind(doc.value) === 'manifest') return planManifest(doc, options)
  if (typeof doc.value !== 'object' || doc.value === null || Array.isArray(doc.value)) {
    throw doc.invalid([doc.violation([], 'expected a mapping of job keys (or `jobs: [...]`)')], 'job file')
  }
  doc.validate('job', 'job file')
  const file = doc.value as BatchFile
  const {concurrency, continue_on_error: continueOnError, jobs, restrict_inputs_to: restrict, ...defaults} = file
  const violations: Violation[] = []
  // `out_format` is an alias: fold it into output_format per level, so a job's output_format overrides a top-level out_format.
  const normalize = (entry: JobEntry, at: Array<string | number>): JobEntry => {
    const {out_format: alias, ...rest} = entry
    if (alias === undefined) return rest
    if (rest.output_format !== undefined && rest.output_format !== alias) {
      violations.push(doc.violation([...at, 'out_format'], `out_format (${alias}) contradicts output_format (${rest.output_format}); use one of them`))
    }
    return {...rest, output_format: rest.output_format ?? alias}
  }
  const base = normalize(defaults, [])
  const entries: Array<{entry: JobEntry; at: Array<string | number>}> = jobs
    ? jobs.map((job, index) => ({at: ['jobs', index], entry: {...base, ...normalize(job, ['jobs', index])}}))
    : [{at: [], entry: base}]
  if (jobs && defaults.name !== undefined) throw doc.invalid([doc.violation(['name'], 'a batch cannot give every job the same `name`; set it per job', {key: true})], 'job file')
  if (jobs && defaults.depends_on !== undefined) throw doc.invalid([doc.violation(['depends_on'], 'a batch cannot make every job wait for the same jobs here; set depends_on per job', {key: true})], 'job file')
  violations.push(...unknownCodes(doc, [], defaults.retry), ...(jobs ?? []).flatMap((job, index) => unknownCodes(doc, ['jobs', index], job.retry)))

  const planned: PlannedJob[] = []
  const names = new Map<string, Array<string | number>>()
  const root = restrict === undefined ? undefined : await realOrSelf(resolve(options.baseDir ?? doc.dir, restrict))
  for (const {at, entry} of entries) {
    if (entry.input === undefined) {
      violations.push(doc.violation(at, 'missing required key "input"'))
      continue
    }
    const format = entry.output_format ?? 'qcow2'
    if ((entry.compress === true || entry.compression !== undefined) && format !== 'qcow2') {
      const key = entry.compression === undefined ? 'compress' : 'compression'
      violations.push(doc.violation(jobs && key in (jobs[at[1] as number] ?? {}) ? [...at, key] : [key], `compression works with output_format qcow2 only (got ${format})`))
    }
    const input = resolve(options.baseDir ?? doc.dir, entry.input)
    if (root !== undefined && relativeInside(root, await realOrSelf(input)) === undefined) {
      const where = doc.violation(jobs && 'input' in (jobs[at[1] as number] ?? {}) ? [...at, 'input'] : ['input'], '')
      throw new H2KError('H2K_UNSAFE_PATH', `${doc.file}:${where.line}:${where.column}: input "${entry.input}" is outside restrict_inputs_to (${root}); refusing the whole file.`, {
        details: {file: doc.file, input, restrictInputsTo: root},
        suggestions: ['Move the input under the restricted directory, or fix the path in the job file.'],
      })
    }
    const name = entry.name ?? (basename(input, extname(input)) || basename(input))
    const previous = names.get(name)
    if (previous) {
      const first = doc.locate(previous)
      violations.push(doc.violation(at, `duplicate job name "${name}" (first used at line ${first.line}); give each job a unique \`name\``))
      continue
    }
    names.set(name, at)
    const windowProblem = windowViolation(doc, entry, jobs ? jobs[at[1] as number] : undefined, at)
    if (windowProblem) {
      // A batch-level window is said once, not once per job inheriting it.
      if (!violations.some((v) => v.line === windowProblem.line && v.column === windowProblem.column)) violations.push(windowProblem)
      continue
    }
    // Stage options: the top level's, then the job's own, key by key, each remembering where it was written.
    const jobOptions = jobs ? jobs[at[1] as number]?.stage_options : undefined
    const stageOptions = mergeStageOptionLayers(documentStageOptions(doc, ['stage_options'], defaults.stage_options), documentStageOptions(doc, [...at, 'stage_options'], jobOptions))
    try {
      const settings = settingsFromFlags(input, layerFlags(options.defaults, {...entryToFlags(entry, options.baseDir ?? doc.dir), 'stage-option': stageOptions}, options.overrides))
      const own = jobs ? jobs[at[1] as number] : file
      const keys: PolicyKeys = {...(own?.depends_on ? {depends_on: own.depends_on} : {}), ...(own?.retry ? {retry: own.retry} : {}), ...windowKeys(own)}
      planned.push({inputAsWritten: entry.input, name, settings, ...(Object.keys(keys).length > 0 ? {keys} : {})})
    } catch (error) {
      violations.push(doc.violation(at, (error as Error).message))
    }
  }
  if (violations.length > 0) throw doc.invalid(violations, 'job file')
  const topKeys: PolicyKeys = {...(defaults.retry ? {retry: defaults.retry} : {}), ...windowKeys(defaults)}
  const batchKeys: PolicyKeys | undefined = jobs && Object.keys(topKeys).length > 0 ? topKeys : undefined
  return {concurrency: concurrency ?? 1, continueOnError: continueOnError ?? true, file: doc.file, jobs: planned, kind: jobs ? 'batch' : 'job', ...(batchKeys ? {batchKeys} : {})}
}

/** `retry.retry_on` / `no_retry_on` entries that are not codes of the catalog. */
function unknownCodes(doc: SourceDocument, at: Array<string | number>, retry: PolicyKeys['retry']): Violation[] {
  const out: Violation[] = []
  for (const key of ['retry_on', 'no_retry_on'] as const) {
    for (const [index, code] of (retry?.[key] ?? []).entries()) {
      if (!isErrorCode(code)) out.push(doc.violation([...at, 'retry', key, index], `"${code}" is not an error code (\`hyper2kvm errors\` lists them)`))
    }
  }
  return out
}

/** The window keys an entry itself writes. */
function windowKeys(entry: JobEntry | undefined): PolicyKeys {
  return {
    ...(entry?.window === undefined ? {} : {window: entry.window}),
    ...(entry?.window_end === undefined ? {} : {window_end: entry.window_end}),
    ...(entry?.override_window === undefined ? {} : {override_window: entry.override_window}),
  }
}

/** A window the schema accepts but parseWindow refuses (an unknown zone, 2026-02-30, "25:00-06:00"), where it is written. */
function windowViolation(doc: SourceDocument, entry: JobEntry, own: JobEntry | undefined, at: Array<string | number>): Violation | undefined {
  if (entry.window === undefined) return undefined
  const path = own && 'window' in own ? [...at, 'window'] : ['window']
  try {
    parseWindow(entry.window, undefined, {where: 'window'})
    return undefined
  } catch (error) {
    if (!isH2KError(error)) throw error
    const {key, problem} = error.details as {key?: string; problem?: string}
    const sub = key?.split('.').slice(1) ?? []
    return doc.violation([...path, ...sub], problem ?? error.message)
  }
}

function planManifest(doc: SourceDocument, options: PlanOptions): JobPlan {
  const value = doc.value as {version?: unknown}
  if (value.version !== '1.0') {
    const found = value.version === undefined ? 'no "version"' : `version ${JSON.stringify(value.version)}`
    throw doc.invalid([doc.violation(value.version === undefined ? [] : ['version'], `manifest has ${found}; this hyper2kvm reads manifest version "1.0"`)], 'manifest')
  }
  doc.validate('manifest', 'manifest v1.0')
  const manifest = doc.value as Manifest
  const {flags, input} = manifestToFlags(manifest, options.baseDir ?? doc.dir)
  let settings: JobSettings
  try {
    const stageOptions = documentStageOptions(doc, ['stage_options'], manifest.stage_options)
    settings = settingsFromFlags(input, layerFlags(options.defaults, {...flags, 'stage-option': stageOptions}, options.overrides))
  } catch (error) {
    throw doc.invalid([doc.violation(['pipeline', 'convert'], (error as Error).message)], 'manifest v1.0')
  }
  const name = settings.name ?? basename(input, extname(input))
  return {concurrency: 1, continueOnError: true, file: doc.file, jobs: [{name, settings}], kind: 'manifest', reportFile: manifestReportPath(doc.file)}
}
