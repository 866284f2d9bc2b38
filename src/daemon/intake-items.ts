import {readdir} from 'node:fs/promises'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {type FlagValues, type JobPlan, type PlanOptions} from '../jobs/job-plan.js'
import {loadJobPlanInWorker} from '../jobs/plan-in-worker.js'
import {companionsOf} from './companions.js'
import {droppedFileType, unsafeInboxPath} from './inbox-paths.js'
import type {LayoutKind} from './layout.js'

/**
 * What one claim is: a disk (with the files it names), a job config (single job or `jobs:` batch) or a
 * manifest (with the inputs inside the inbox they name), or a document that cannot be run (claimed, then
 * failed with its error file).
 */
export type ItemKind = 'disk' | 'job-config' | 'manifest' | 'invalid'

export interface IntakeItem {
  kind: ItemKind
  /** The top-level file dropped, relative to the inbox. */
  main: string
  /** Files that must be there before the claim (relative to the inbox): an OVF's disks, a config's inputs. */
  required: string[]
  /** Files that travel with it when present (an OVF's .mf/.cert). */
  optional: string[]
  /** Documents: the plan as read in the inbox (invalid: the reason). */
  plan?: JobPlan
  error?: H2KError
}

/** Names in the inbox that are never intake items: hidden, partial uploads, our own sidecars. */
export function ignoredName(name: string): boolean {
  return name.startsWith('.') || /\.(part|tmp|crdownload|partial)$/i.test(name) || /\.(meta|error|report)\.json$/i.test(name)
}

const DOCUMENT = /\.(ya?ml|json)$/i

/** `path` relative to the inbox when strictly inside it (the inbox itself is no file of it). */
export function insideInbox(inbox: string, path: string): string | undefined {
  return relativeInside(inbox, path) || undefined
}

interface CacheEntry {
  key: string
  item: IntakeItem
}

/**
 * Finds the intake items of a layout's inbox: every top-level file that is not a companion of another.
 * Descriptors and documents are re-read only when their size or mtime changes.
 */
export class IntakeScanner {
  private readonly cache = new Map<string, CacheEntry>()

  constructor(
    private readonly kind: LayoutKind,
    private readonly inbox: string,
    private readonly defaults: () => FlagValues,
  ) {}

  /** `stats`: size and mtime by top-level name (the caller has them from its stability checks). */
  async scan(stats: Map<string, {size: number; mtimeMs: number}>): Promise<IntakeItem[]> {
    const items: IntakeItem[] = []
    for (const [name, info] of stats) {
      const key = `${info.size}:${info.mtimeMs}`
      const cached = this.cache.get(name)
      if (cached?.key === key) {
        items.push(cached.item)
        continue
      }
      const item = await this.describe(name)
      this.cache.set(name, {item, key})
      items.push(item)
    }
    for (const name of this.cache.keys()) if (!stats.has(name)) this.cache.delete(name)
    // A file another item names travels with that item: it is not an item of its own.
    const taken = new Set(items.flatMap((i) => [...i.required, ...i.optional]))
    return items.filter((i) => !taken.has(i.main) && (this.kind !== 'manifest-workflow' || i.kind !== 'disk'))
  }

  /** Top-level regular files of the inbox that may be intake items (subdirectories are never claimed alone). */
  async topLevelFiles(): Promise<string[]> {
    const entries = await readdir(this.inbox, {withFileTypes: true})
    return entries.filter((e) => (e.isFile() || e.isSymbolicLink()) && !ignoredName(e.name)).map((e) => e.name)
  }

  private async describe(name: string): Promise<IntakeItem> {
    const path = join(this.inbox, name)
    // Decided by lstat before anything opens it: a symlink is claimed as itself and refused, never read.
    if (droppedFileType(this.inbox, name) === 'symlink') return invalid(name, symlinkRefused(name))
    if (this.kind !== 'watch' && DOCUMENT.test(name)) return this.describeDocument(name)
    const found = await this.companions([path])
    return 'error' in found ? invalid(name, found.error) : {kind: 'disk', main: name, ...found}
  }

  /**
   * Companions of the given files, transitively, as paths relative to the inbox (outside ones stay where
   * they are). One that may not travel (inbox-paths.ts: through a symlink, hidden, not a regular file) makes
   * the whole item refused: nothing of it moves but the dropped file.
   */
  private async companions(paths: string[]): Promise<{required: string[]; optional: string[]} | {error: H2KError}> {
    const required = new Set<string>()
    const optional = new Set<string>()
    const queue = [...paths]
    const seen = new Set(queue)
    while (queue.length > 0) {
      const found = await companionsOf(queue.shift()!)
      for (const [list, into] of [
        [found.required, required],
        [found.optional, optional],
      ] as const) {
        for (const path of list) {
          const rel = insideInbox(this.inbox, path)
          if (rel === undefined || seen.has(path)) continue
          const why = unsafeInboxPath(this.inbox, rel)
          if (why !== undefined) return {error: travelRefused(relativeName(this.inbox, paths[0]!), rel, why)}
          seen.add(path)
          into.add(rel)
          queue.push(path)
        }
      }
    }
    return {optional: [...optional], required: [...required]}
  }

  private async describeDocument(name: string): Promise<IntakeItem> {
    let plan: JobPlan
    try {
      plan = await planDocument(this.kind, join(this.inbox, name), this.inbox, this.defaults())
    } catch (error) {
      return invalid(name, mapForeignError(error))
    }
    const inputs = plan.jobs.map((j) => j.settings.input).filter((p) => insideInbox(this.inbox, p) !== undefined)
    for (const input of inputs) {
      const why = unsafeInboxPath(this.inbox, insideInbox(this.inbox, input)!)
      if (why !== undefined) return invalid(name, travelRefused(name, insideInbox(this.inbox, input)!, why))
    }
    const more = await this.companions(inputs)
    if ('error' in more) return invalid(name, more.error)
    return {
      kind: plan.kind === 'manifest' ? 'manifest' : 'job-config',
      main: name,
      optional: more.optional,
      plan,
      required: [...new Set([...inputs.map((p) => insideInbox(this.inbox, p)!), ...more.required])],
    }
  }
}

const invalid = (main: string, error: H2KError): IntakeItem => ({error, kind: 'invalid', main, optional: [], required: []})

const relativeName = (inbox: string, path: string): string => insideInbox(inbox, path) ?? path

/** A dropped top-level symlink: refused by what it is; where it points is neither read nor said. */
export function symlinkRefused(name: string): H2KError {
  return new H2KError('H2K_UNSAFE_PATH', `${name} is a symbolic link; the daemon takes only regular files dropped into its drop directory and never follows a link there.`, {
    details: {file: name},
    suggestions: ['Copy or move the file itself into the drop directory; to convert disks where they lie, add their directory to allowed_input_dirs and name them from a job file.'],
  })
}

/**
 * The item as it may be claimed now: its files are checked again right before the claim (a descriptor
 * described while a companion was missing is cached; a symlink may have appeared on the way since).
 */
export function recheckItem(inbox: string, item: IntakeItem): IntakeItem {
  for (const rel of [...item.required, ...item.optional]) {
    const why = unsafeInboxPath(inbox, rel)
    if (why !== undefined) return invalid(item.main, travelRefused(item.main, rel, why))
  }
  return item
}

/** A file an item names that may not travel with it (and so is neither moved nor read). */
function travelRefused(main: string, rel: string, why: string): H2KError {
  return new H2KError('H2K_UNSAFE_PATH', `${main} names ${rel}, which ${why}; refusing to move or read it.`, {
    details: {file: main, names: rel},
    suggestions: ["Put the files an item names next to it or in a plain subdirectory of the drop directory: no symlinks, no hidden directories, never the daemon's own directories."],
  })
}

/**
 * How the daemon plans a dropped document: its keys override the configuration's job defaults, except the
 * configuration's stage options, which win key by key: they are the operator's word on what a plugin stage
 * may do on this host (a stage's option can name a URL to report to, a host path, a limit), and a document
 * is whoever could write to the drop directory. A document may still set the keys the configuration leaves out.
 */
export function droppedDocumentPlanOptions(baseDir: string, defaults: FlagValues): PlanOptions {
  const operator = defaults['stage-option']
  return {baseDir, defaults, ...(operator === undefined ? {} : {overrides: {'stage-option': operator}})}
}

/**
 * Read a job config or manifest dropped into a workflow inbox, resolving its relative paths against the
 * inbox (`baseDir`) even once the file has been claimed elsewhere. A manifest workflow runs manifests only.
 */
export async function planDocument(kind: LayoutKind, path: string, baseDir: string, defaults: FlagValues): Promise<JobPlan> {
  // Off the event loop, with a time and memory budget: the document is a stranger's.
  const plan = await loadJobPlanInWorker(path, droppedDocumentPlanOptions(baseDir, defaults))
  if (kind === 'manifest-workflow' && plan.kind !== 'manifest') {
    throw new H2KError('H2K_JOB_INVALID', `${path} is a job file, not a manifest v1.0; this daemon runs the manifest workflow.`, {
      suggestions: ["Drop job files (single or `jobs:` batches) into a workflow-mode daemon's to_be_processed/, or write a manifest (version: \"1.0\", pipeline: …)."],
    })
  }
  return plan
}
