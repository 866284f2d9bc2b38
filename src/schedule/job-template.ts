import {lstat} from 'node:fs/promises'
import {extname, join, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {companionsOf} from '../daemon/companions.js'
import {documentKind, type Manifest, manifestToEntry} from '../jobs/job-plan.js'
import type {JobTemplate, Schedule, WindowValue} from './schedule.js'
import {listSweepDir, readTemplateDocument} from './template-files.js'
import {wildcardMatch} from './wildcard-match.js'

/** What the job service receives for one run, and what is worth saying about how it was made. */
export interface ExpandedTemplate {
  document: Record<string, unknown>
  notes: string[]
}

/** A sweep converts at most this many files per run (a directory of thousands is a mistake, not a wave). */
export const MAX_SWEEP_FILES = 500

/** What a sweep takes as a disk (by extension); descriptors' extents and OVF disks travel with their descriptor. */
const DISK_EXTENSIONS = new Set(['.ova', '.ovf', '.vmdk', '.vhd', '.vhdx', '.vdi', '.qcow2', '.raw', '.img'])

export interface ExpandContext {
  /** allowed_input_dirs: what an API-made template may read (job files, manifests, sweep directories). */
  allowedInputDirs: readonly string[]
  source: Schedule['source']
}

/**
 * The job document of one run: the inline document as it is, a job file or manifest read now, or one job
 * per disk file found in a sweep directory now. The job service validates it (schema, inputs under
 * allowed_input_dirs, depends_on) as it validates every API submission.
 */
export async function expandTemplate(template: JobTemplate, ctx: ExpandContext): Promise<ExpandedTemplate> {
  const t = template as Record<string, unknown>
  if (typeof t.job_file === 'string') return readJobFile(t.job_file, ctx)
  if (typeof t.manifest === 'string') return readManifest(t.manifest, ctx)
  if (typeof t.sweep_dir === 'string') return sweep(t.sweep_dir, typeof t.pattern === 'string' ? t.pattern : undefined, ctx)
  return {document: structuredClone(template) as Record<string, unknown>, notes: []}
}

async function readDocument(path: string, ctx: ExpandContext): Promise<{value: Record<string, unknown>; dir: string; kind: ReturnType<typeof documentKind>}> {
  // Opened without following links and checked after the open (template-files.ts); parse errors name keys, never values.
  const doc = await readTemplateDocument(path, {allowedInputDirs: ctx.allowedInputDirs, confined: ctx.source === 'api'}, (d) => {
    if (typeof d.value !== 'object' || d.value === null || Array.isArray(d.value)) throw d.invalid([d.violation([], 'expected a mapping')], 'schedule template')
    if (documentKind(d.value) === 'manifest') d.validate('manifest', 'manifest')
  })
  return {dir: doc.dir, kind: documentKind(doc.value), value: doc.value as Record<string, unknown>}
}

async function readJobFile(path: string, ctx: ExpandContext): Promise<ExpandedTemplate> {
  const {dir, kind, value} = await readDocument(path, ctx)
  if (kind !== 'job') throw new H2KError('H2K_JOB_INVALID', `${path} is a ${kind === 'manifest' ? 'manifest (use job_template: {manifest: …})' : 'daemon configuration'}, not a job file.`, {details: {file: path}})
  // Relative inputs are relative to the job file, as for `convert --job`.
  const absolute = (entry: Record<string, unknown>): Record<string, unknown> => (typeof entry.input === 'string' ? {...entry, input: resolve(dir, entry.input)} : entry)
  const document = absolute(value)
  if (Array.isArray(value.jobs)) document.jobs = value.jobs.map((j: unknown) => (typeof j === 'object' && j !== null ? absolute(j as Record<string, unknown>) : j))
  return {document, notes: []}
}

async function readManifest(path: string, ctx: ExpandContext): Promise<ExpandedTemplate> {
  const {dir, kind, value} = await readDocument(path, ctx)
  if (kind !== 'manifest') throw new H2KError('H2K_JOB_INVALID', `${path} is not a manifest v1.0 (version: "1.0", pipeline: …).`, {details: {file: path}})
  const {entry, verify} = manifestToEntry(value as unknown as Manifest)
  const {output_dir: _outputDir, ...keys} = entry
  const document: Record<string, unknown> = Object.fromEntries(Object.entries({...keys, input: resolve(dir, entry.input!)}).filter(([, v]) => v !== undefined))
  const notes = verify === undefined ? [] : ['the manifest\'s validate.compare has no job key: the daemon\'s verify setting applies']
  return {document, notes}
}

async function sweep(named: string, pattern: string | undefined, ctx: ExpandContext): Promise<ExpandedTemplate> {
  // Every swept file becomes a job input: the directory itself (opened, then checked: template-files.ts) must be
  // where inputs may be read from, and its entries are named by its real path from then on.
  const listed = await listSweepDir(named, {allowedInputDirs: ctx.allowedInputDirs, confined: true})
  const dir = listed.dir
  const names = listed.names.filter((n) => !n.startsWith('.') && DISK_EXTENSIONS.has(extname(n).toLowerCase()) && (pattern === undefined || wildcardMatch(pattern, n))).sort()
  const notes: string[] = []
  const disks: string[] = []
  for (const name of names) {
    const path = join(dir, name)
    let entry: Awaited<ReturnType<typeof lstat>>
    try {
      entry = await lstat(path)
    } catch (error) {
      // Gone since the listing, or not readable by the daemon: this run goes without it, and says so.
      notes.push(`${name}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'vanished before it could be read' : `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`}, skipped`)
      continue
    }
    // A link is refused by what it is: where it points is neither followed nor said.
    if (entry.isSymbolicLink()) notes.push(`${name}: a symbolic link, refused`)
    else if (entry.isFile()) disks.push(path)
  }
  // Extents of a VMDK descriptor and an OVF's disks are part of their descriptor's job, not jobs of their own.
  const companions = new Set<string>()
  for (const disk of disks) for (const c of (await companionsOf(disk)).required) companions.add(c)
  const inputs = disks.filter((d) => !companions.has(d))
  if (inputs.length === 0) throw new H2KError('H2K_JOB_INVALID', `sweep_dir ${named} holds no disk file${pattern === undefined ? '' : ` matching ${pattern}`}: nothing to convert this run${notes.length > 0 ? ` (${notes.join('; ')})` : ''}.`, {details: {dir: named, notes}})
  if (inputs.length > MAX_SWEEP_FILES) throw new H2KError('H2K_JOB_INVALID', `sweep_dir ${named} holds ${inputs.length} disk files; a run takes at most ${MAX_SWEEP_FILES}.`, {details: {dir: named}, suggestions: ['Split the directory, or narrow it with pattern.']})
  const document = inputs.length === 1 ? {input: inputs[0]} : {jobs: inputs.map((input) => ({input}))}
  return {document, notes}
}

/**
 * The schedule's policy onto every job of the document: window and window_end (unless a job sets its
 * own; the window in the schedule's `timezone` unless it names its own zone, as the cron is), retry (max → max_retries, backoff) unless the job has a `retry:`, and override_window on a
 * trigger that asks for it. A batch's jobs get the keys each; the batch level is left alone.
 */
export function applySchedulePolicy(document: Record<string, unknown>, schedule: Schedule, options: {overrideWindow?: boolean} = {}): Record<string, unknown> {
  const retry = schedule.retry === undefined ? undefined : {...(schedule.retry.max === undefined ? {} : {max_retries: schedule.retry.max}), ...(schedule.retry.backoff === undefined ? {} : {backoff: schedule.retry.backoff})}
  const window = zonedWindow(schedule)
  const batchHas = (key: string): boolean => Array.isArray(document.jobs) && key in document
  const onto = (job: Record<string, unknown>): Record<string, unknown> => ({
    ...job,
    ...(window !== undefined && !('window' in job) && !batchHas('window') ? {window} : {}),
    ...(schedule.windowEnd !== undefined && !('window_end' in job) && !batchHas('window_end') ? {window_end: schedule.windowEnd} : {}),
    ...(retry !== undefined && !('retry' in job) && !batchHas('retry') ? {retry} : {}),
    ...(options.overrideWindow ? {override_window: true} : {}),
  })
  if (!Array.isArray(document.jobs)) return onto(document)
  return {...document, jobs: document.jobs.map((j: unknown) => (typeof j === 'object' && j !== null ? onto(j as Record<string, unknown>) : j))}
}

/** A schedule's window in the schedule's zone: "22:00-06:00" with timezone America/Chicago is 22:00-06:00 in Chicago, not on the host's clock. */
function zonedWindow(schedule: Schedule): WindowValue | undefined {
  const {timezone, window} = schedule
  if (window === undefined || timezone === undefined) return window
  if (typeof window === 'string') return {hours: window, timezone}
  return window.timezone === undefined ? {...window, timezone} : window
}
