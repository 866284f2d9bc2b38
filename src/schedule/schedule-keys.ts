import {randomUUID} from 'node:crypto'
import {isAbsolute, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {CronExpression, hostTimeZone} from './cron-expression.js'
import {parseWindow} from './time-window.js'
import type {CatchUp, JobTemplate, Overlap, ScheduleRetry, ScheduleSource, ScheduleSpec, WindowEnd, WindowValue} from './schedule.js'
import {patternProblem} from './wildcard-match.js'

/** A schedule as written in `schedules:` of the daemon configuration or an API body (the seed's keys, plus ours). */
export interface ScheduleKeys {
  id?: string
  name?: string
  description?: string
  /** The seed's key for the cron expression; `cron` is accepted too. */
  schedule?: string
  cron?: string
  timezone?: string
  enabled?: boolean
  job_template?: unknown
  tags?: string[]
  window?: WindowValue
  window_end?: WindowEnd
  overlap?: Overlap
  catch_up?: CatchUp
  retry?: {max?: number; backoff?: ScheduleRetry['backoff']}
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const KNOWN = new Set(['id', 'name', 'description', 'schedule', 'cron', 'timezone', 'enabled', 'job_template', 'tags', 'window', 'window_end', 'overlap', 'catch_up', 'retry'])

export interface ParseContext {
  source: ScheduleSource
  /** Where `where` is (a file's key path, or `request body`), for messages. */
  where: string
  /** Relative template paths resolve against it (the configuration file's directory); absent (the API): paths must be absolute. */
  baseDir?: string
  /** Things worth a warning (the seed's output_path, ignored). */
  warn?: (message: string) => void
}

const invalid = (where: string, message: string, suggestion?: string): H2KError =>
  new H2KError('H2K_USAGE', `${where}: ${message}`, suggestion ? {suggestions: [suggestion]} : {})

/**
 * parseScheduleKeys, and an inline job template checked as the job service will check it at each run
 * (template-check.ts): what every caller that creates or changes a schedule uses (API, configuration, CLI).
 */
export async function parseSchedule(value: unknown, ctx: ParseContext): Promise<ScheduleSpec> {
  const spec = parseScheduleKeys(value, ctx)
  const {checkInlineTemplate} = await import('./template-check.js')
  await checkInlineTemplate(spec.template, `${ctx.where} (${spec.id})`)
  return spec
}

/** The keys of one schedule checked and normalized (defaults applied, paths absolute); throws H2K_USAGE naming the key (H2K_JOB_INVALID for the window). The template document is checked by parseSchedule. */
export function parseScheduleKeys(value: unknown, ctx: ParseContext): ScheduleSpec {
  const {where} = ctx
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(where, 'a schedule is a mapping of keys (id, cron, job_template …)')
  const keys = value as ScheduleKeys & Record<string, unknown>
  const unknown = Object.keys(keys).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0) throw invalid(where, `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, `Known keys: ${[...KNOWN].join(', ')}.`)
  const id = keys.id ?? (ctx.source === 'api' ? `s-${randomUUID().slice(0, 8)}` : undefined)
  if (typeof id !== 'string' || !ID.test(id)) throw invalid(where, 'id must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit')
  const at = `${where} (${id})`
  const text = (key: 'name' | 'description'): string | undefined => {
    const v = keys[key]
    if (v !== undefined && typeof v !== 'string') throw invalid(at, `${key} must be a string`)
    return v
  }
  if (keys.schedule !== undefined && keys.cron !== undefined && keys.schedule !== keys.cron) throw invalid(at, 'schedule and cron both given, and they differ; write one')
  const cron = keys.cron ?? keys.schedule
  if (typeof cron !== 'string') throw invalid(at, 'the cron expression is missing (`schedule:` or `cron:`, five fields, e.g. "0 2 * * *")')
  const timezone = keys.timezone ?? hostTimeZone()
  if (typeof timezone !== 'string') throw invalid(at, 'timezone must be an IANA zone name')
  new CronExpression(cron, timezone, `${at}: cron`)
  if (keys.enabled !== undefined && typeof keys.enabled !== 'boolean') throw invalid(at, 'enabled must be true or false')
  const tags = keys.tags ?? []
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw invalid(at, 'tags must be a list of strings')
  const overlap = oneOf(keys.overlap, ['skip', 'queue'] as const, 'skip', at, 'overlap')
  const catchUp = oneOf(keys.catch_up, ['none', 'one', 'all'] as const, 'one', at, 'catch_up')
  const windowEnd = keys.window_end === undefined ? undefined : oneOf(keys.window_end, ['cancel', 'finish'] as const, 'finish', at, 'window_end')
  const window = keys.window === undefined ? undefined : windowValue(keys.window, timezone, at)
  const retry = keys.retry === undefined ? undefined : retryValue(keys.retry, at)
  const template = jobTemplate(keys.job_template, at, ctx)
  return {
    catchUp,
    cron: cron.trim().split(/\s+/).join(' '),
    enabled: keys.enabled ?? true,
    id,
    name: text('name') ?? id,
    overlap,
    source: ctx.source,
    tags,
    template,
    timezone,
    ...(text('description') === undefined ? {} : {description: text('description')!}),
    ...(retry === undefined ? {} : {retry}),
    ...(window === undefined ? {} : {window}),
    ...(windowEnd === undefined ? {} : {windowEnd}),
  }
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T, at: string, key: string): T {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalid(at, `${key} must be one of ${allowed.join(', ')}`)
  return value as T
}

/**
 * The window checked now, as the job service will read it in every job the schedule submits (hours, days,
 * holidays, zone; H2K_JOB_INVALID naming `window`): a typo is refused at create, not found on the night of
 * the wave. Without a zone of its own, the window is read in the schedule's `timezone` (applySchedulePolicy).
 */
function windowValue(value: unknown, timezone: string, at: string): WindowValue {
  if (!(typeof value === 'string' && value.length > 0) && !(typeof value === 'object' && value !== null && !Array.isArray(value))) {
    throw new H2KError('H2K_JOB_INVALID', `${at}: window must be "HH:MM-HH:MM" or {hours, days?, holidays?, timezone?}`, {
      details: {key: 'window'},
      suggestions: ['For example window: "22:00-06:00", or {hours: "22:00-06:00", days: [mon-fri], holidays: [2026-12-25]}.'],
    })
  }
  parseWindow(value as WindowValue, timezone, {where: `${at}: window`})
  return value as WindowValue
}

function retryValue(value: unknown, at: string): ScheduleRetry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(at, 'retry must be {max, backoff}')
  const {backoff, max, ...rest} = value as {max?: unknown; backoff?: unknown}
  if (Object.keys(rest).length > 0) throw invalid(at, `retry: unknown key ${Object.keys(rest).join(', ')} (max, backoff)`)
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 0 || max > 100)) throw invalid(at, 'retry.max must be an integer 0-100')
  return {
    ...(max === undefined ? {} : {max: max as number}),
    ...(backoff === undefined ? {} : {backoff: oneOf(backoff, ['exponential', 'fixed', 'none'] as const, 'exponential', at, 'retry.backoff')}),
  }
}

/** The seed's template keys (`vm_path`, `output_path`, `options`, `name`): not job-file keys. */
const SEED_KEYS = ['vm_path', 'output_path', 'options']

function jobTemplate(value: unknown, at: string, ctx: ParseContext): JobTemplate {
  if (value === undefined) throw invalid(at, 'job_template is missing: what should each run convert?', 'job_template: an inline job ({input: …} or jobs: […]), {job_file: path}, {sweep_dir: path, pattern?: "*.vmdk"} or {manifest: path}.')
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(at, 'job_template must be a mapping')
  const t = value as Record<string, unknown>
  const path = (key: string): string => {
    const p = t[key]
    if (typeof p !== 'string' || p.length === 0) throw invalid(at, `job_template.${key} must be a path`)
    if (ctx.baseDir !== undefined) return resolve(ctx.baseDir, p)
    if (!isAbsolute(p)) throw invalid(at, `job_template.${key} must be an absolute path (${p})`)
    return p
  }
  const only = (...allowed: string[]): void => {
    const extra = Object.keys(t).filter((k) => !allowed.includes(k))
    if (extra.length > 0) throw invalid(at, `job_template with ${allowed[0]} takes no other key than ${allowed.slice(1).join(', ') || 'it'} (got ${extra.join(', ')})`)
  }
  if ('job_file' in t) {
    only('job_file')
    return {job_file: path('job_file')}
  }
  if ('manifest' in t) {
    only('manifest')
    return {manifest: path('manifest')}
  }
  if ('sweep_dir' in t) {
    only('sweep_dir', 'pattern')
    if (t.pattern !== undefined && (typeof t.pattern !== 'string' || patternProblem(t.pattern) !== undefined)) throw invalid(at, `job_template.pattern ${typeof t.pattern === 'string' ? patternProblem(t.pattern) : 'must be a file-name pattern (* and ?), without a /'}`)
    return {sweep_dir: path('sweep_dir'), ...(t.pattern === undefined ? {} : {pattern: t.pattern as string})}
  }
  if (SEED_KEYS.some((k) => k in t)) return seedTemplate(t, at, ctx)
  if (!('input' in t) && !('jobs' in t)) throw invalid(at, 'job_template names nothing to convert: give input (one job), jobs (a batch), job_file, sweep_dir or manifest')
  return ctx.baseDir === undefined ? t : absoluteInputs(t, ctx.baseDir)
}

/** HyperSDK's `{vm_path, output_path, options, name}`: vm_path is the input; outputs are the daemon's, options have no meaning here. */
function seedTemplate(t: Record<string, unknown>, at: string, ctx: ParseContext): JobTemplate {
  const {name, options, output_path: outputPath, vm_path: vmPath, ...rest} = t
  if (typeof vmPath !== 'string' || vmPath.length === 0) throw invalid(at, 'job_template.vm_path must be a path')
  if (outputPath !== undefined) ctx.warn?.(`${at}: job_template.output_path is ignored: the daemon puts every output in output_dir/<date>/<vm>/`)
  if (options !== undefined) ctx.warn?.(`${at}: job_template.options (HyperSDK export options) are ignored: conversion settings are job keys (output_format, compress …) beside input`)
  const doc: Record<string, unknown> = {...rest, input: vmPath, ...(typeof name === 'string' ? {name} : {})}
  return ctx.baseDir === undefined ? doc : absoluteInputs(doc, ctx.baseDir)
}

/** Inline documents from the configuration: relative inputs are relative to the configuration file. */
function absoluteInputs(doc: Record<string, unknown>, baseDir: string): Record<string, unknown> {
  const fix = (entry: Record<string, unknown>): Record<string, unknown> => (typeof entry.input === 'string' ? {...entry, input: resolve(baseDir, entry.input)} : entry)
  const out = fix(doc)
  if (Array.isArray(doc.jobs)) out.jobs = doc.jobs.map((j: unknown) => (typeof j === 'object' && j !== null ? fix(j as Record<string, unknown>) : j))
  return out
}
