import {dirname, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {escapeControl} from '../render/escape-control.js'
import {parseSchedule} from './schedule-keys.js'
import {parseWindow} from './time-window.js'

/** A schedule as the API returns it (openapi.yaml: Schedule). */
export interface ApiSchedule {
  id: string
  name: string
  description: string | null
  cron: string
  timezone: string
  enabled: boolean
  job_template: Record<string, unknown>
  window: unknown
  window_end: string | null
  overlap: string
  catch_up: string
  retry: {max?: number; backoff?: string} | null
  tags: string[]
  source: 'config' | 'api'
  next_run: string | null
  last_run: string | null
  run_count: number
  created_at: string
  updated_at: string
}

export interface ApiScheduleRun {
  scheduled_for: string
  fired_at: string
  outcome: string
  job_ids: string[]
  override_window: boolean
  detail: string | null
}

/** `schedule list`: one line per schedule. */
export function scheduleTable(schedules: readonly ApiSchedule[]): string[] {
  if (schedules.length === 0) return ['no schedules']
  const rows = schedules.map((s) => [s.id, s.enabled ? 'on' : 'off', s.cron, s.timezone, s.next_run ?? '-', s.last_run ?? '-', String(s.run_count), s.source, s.name].map((c) => escapeControl(c)))
  const head = ['ID', 'ON', 'CRON', 'ZONE', 'NEXT RUN', 'LAST RUN', 'RUNS', 'FROM', 'NAME']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [line(head), ...rows.map(line)]
}

/** `schedule show`: the schedule's keys, then its runs. */
export function scheduleDetail(s: ApiSchedule, runs: readonly ApiScheduleRun[]): string[] {
  const lines: string[] = []
  const add = (key: string, value: unknown): void => {
    if (value !== null && value !== undefined && value !== '') lines.push(`${key.padEnd(13)} ${escapeControl(typeof value === 'string' ? value : JSON.stringify(value))}`)
  }
  for (const key of ['id', 'name', 'description', 'enabled', 'cron', 'timezone', 'next_run', 'last_run', 'run_count', 'source', 'overlap', 'catch_up', 'window', 'window_end', 'retry', 'tags', 'job_template'] as const) {
    add(key, key === 'tags' && s.tags.length === 0 ? null : s[key])
  }
  lines.push(runs.length > 0 ? 'runs (newest first):' : 'runs: none yet')
  for (const r of runs) lines.push(`  ${r.scheduled_for}  ${r.outcome.padEnd(15)} ${r.job_ids.join(',')}${r.override_window ? '  (override_window)' : ''}${r.detail ? `  ${escapeControl(r.detail)}` : ''}`)
  return lines
}

/** The `schedule create` flags that make a schedule's keys. */
/** What `schedule enable`/`disable` print: the schedule's id and whether (and when next) it runs. */
export function enabledLine(s: ApiSchedule): string {
  return `${s.id} ${s.enabled ? `enabled, next run ${s.next_run ?? 'never'}` : 'disabled'}`
}

export interface CreateFlags {
  file?: string
  id?: string
  name?: string
  description?: string
  cron?: string
  timezone?: string
  window?: string
  'window-end'?: string
  'retry-max'?: number
  'retry-backoff'?: string
  'job-file'?: string
  'sweep-dir'?: string
  pattern?: string
  manifest?: string
  input?: string
  overlap?: string
  'catch-up'?: string
  tag?: string[]
  disabled?: boolean
}

/**
 * The body of POST /api/v1/schedules: a schedule file's keys (`--file`, relative paths against the file),
 * the flags over them; paths made absolute here (the daemon takes absolute paths only). The keys are
 * checked as the daemon will check them before anything is sent.
 */
export async function createBody(flags: CreateFlags): Promise<Record<string, unknown>> {
  let keys: Record<string, unknown> = {}
  let baseDir = process.cwd()
  if (flags.file !== undefined) {
    const {SourceDocument} = await import('../jobs/document.js')
    const doc = await SourceDocument.read(flags.file)
    if (typeof doc.value !== 'object' || doc.value === null || Array.isArray(doc.value)) throw new H2KError('H2K_USAGE', `${flags.file}: a schedule file is a mapping of schedule keys (id, cron, job_template …).`)
    keys = {...(doc.value as Record<string, unknown>)}
    delete keys.$schema
    baseDir = dirname(resolve(flags.file))
  }
  // A flag's mistake is the command line's (H2K_USAGE naming --window), read in the schedule's zone as the daemon will.
  if (flags.window !== undefined) parseWindow(flags.window, flags.timezone ?? (typeof keys.timezone === 'string' ? keys.timezone : undefined), {code: 'H2K_USAGE', where: '--window'})
  const templates = [flags['job-file'] && {job_file: resolve(flags['job-file'])}, flags['sweep-dir'] && {sweep_dir: resolve(flags['sweep-dir']), ...(flags.pattern ? {pattern: flags.pattern} : {})}, flags.manifest && {manifest: resolve(flags.manifest)}, flags.input && {input: resolve(flags.input)}].filter(Boolean)
  if (templates.length > 1) throw new H2KError('H2K_USAGE', 'Give one of --job-file, --sweep-dir, --manifest, --input.')
  const retry = flags['retry-max'] === undefined && flags['retry-backoff'] === undefined ? undefined : {...((keys.retry as object | undefined) ?? {}), ...(flags['retry-max'] === undefined ? {} : {max: flags['retry-max']}), ...(flags['retry-backoff'] === undefined ? {} : {backoff: flags['retry-backoff']})}
  const body: Record<string, unknown> = {
    ...keys,
    ...(flags.id === undefined ? {} : {id: flags.id}),
    ...(flags.name === undefined ? {} : {name: flags.name}),
    ...(flags.description === undefined ? {} : {description: flags.description}),
    ...(flags.cron === undefined ? {} : {cron: flags.cron, schedule: undefined}),
    ...(flags.timezone === undefined ? {} : {timezone: flags.timezone}),
    ...(flags.window === undefined ? {} : {window: flags.window}),
    ...(flags['window-end'] === undefined ? {} : {window_end: flags['window-end']}),
    ...(flags.overlap === undefined ? {} : {overlap: flags.overlap}),
    ...(flags['catch-up'] === undefined ? {} : {catch_up: flags['catch-up']}),
    ...(flags.tag === undefined ? {} : {tags: flags.tag}),
    ...(flags.disabled ? {enabled: false} : {}),
    ...(retry === undefined ? {} : {retry}),
    ...(templates.length === 1 ? {job_template: templates[0]} : {}),
  }
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k]
  if (body.cron === undefined && body.schedule === undefined) throw new H2KError('H2K_USAGE', 'The schedule needs --cron (five fields, e.g. "0 2 * * *"), or a --file with cron:.')
  if (body.job_template === undefined) throw new H2KError('H2K_USAGE', 'The schedule needs something to convert: --job-file, --sweep-dir, --manifest or --input (or a --file with job_template:).')
  // Checked here as the daemon checks it (the zone against this host's zone names), paths made absolute.
  const spec = await parseSchedule({...body, ...(body.id === undefined ? {id: 'x'} : {})}, {baseDir, source: 'api', where: flags.file ?? 'schedule create'})
  return {...body, job_template: spec.template}
}
