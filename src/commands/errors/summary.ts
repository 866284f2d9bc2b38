import {BaseCommand} from '../../base-command.js'
import {errorsLayout, watchDirFlag} from '../../ctl/daemon-flags.js'
import {type ErrorFile, readErrorFiles} from '../../daemon/error-files.js'

interface SummaryResult {
  layout: string
  total: number
  permanent: number
  retryable: number
  /** Error files that could not be parsed (counted under "unreadable" in every grouping). */
  unreadable: number
  oldest: string | null
  newest: string | null
  by_error_code: Record<string, number>
  by_phase: Record<string, number>
  by_file_type: Record<string, number>
  by_day: Record<string, number>
}

/** The file type a failure is grouped under: the main file's extension, lower case. */
const fileType = (filename: string): string => /\.([^./]+)$/.exec(filename)?.[1]?.toLowerCase() ?? 'none'

/** Counts per key, largest first (ties by key). */
function countBy(entries: ErrorFile[], key: (e: ErrorFile) => string): Record<string, number> {
  const counts = new Map<string, number>()
  for (const e of entries) counts.set(key(e), (counts.get(key(e)) ?? 0) + 1)
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
}

export default class ErrorsSummary extends BaseCommand<typeof ErrorsSummary> {
  static override description = 'Counts the error files of the layout by error code, by phase, by file type (extension) and by day (UTC), with how many are permanent (retrying the same file cannot help) or retryable, and the oldest and newest failure.'
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --watch-dir /srv/queue --json']
  static override flags = {...watchDirFlag}
  static override summary = 'Summarise the daemon failures: by error code, phase, file type and day.'

  public async run(): Promise<SummaryResult> {
    const layout = await errorsLayout(this.flags)
    const entries = await readErrorFiles(layout)
    const readable = (e: ErrorFile, value: unknown): string => (e.unreadable === undefined ? String(value ?? 'none') : 'unreadable')
    const summary: SummaryResult = {
      by_day: Object.fromEntries(Object.entries(countBy(entries, (e) => e.failedAt.toISOString().slice(0, 10))).sort((a, b) => b[0].localeCompare(a[0]))),
      by_error_code: countBy(entries, (e) => readable(e, e.record?.error_code)),
      by_file_type: countBy(entries, (e) => fileType(e.filename)),
      by_phase: countBy(entries, (e) => readable(e, e.record?.phase)),
      layout: layout.kind,
      newest: entries[0]?.failedAt.toISOString() ?? null,
      oldest: entries.at(-1)?.failedAt.toISOString() ?? null,
      permanent: entries.filter((e) => e.record?.permanent === true).length,
      retryable: entries.filter((e) => e.record?.permanent === false).length,
      total: entries.length,
      unreadable: entries.filter((e) => e.unreadable !== undefined).length,
    }
    if (!this.jsonEnabled()) this.print(summary, layout.errorRoots)
    return summary
  }

  private print(s: SummaryResult, roots: string[]): void {
    this.log(`${s.total} failed file(s) in ${roots.join(', ')} (${s.layout} layout)`)
    if (s.total === 0) return
    this.log(`permanent ${s.permanent}, retryable ${s.retryable}${s.unreadable > 0 ? `, unreadable ${s.unreadable}` : ''}`)
    this.log(`oldest ${s.oldest}, newest ${s.newest}`)
    const groups: Array<[string, Record<string, number>]> = [
      ['by error code', s.by_error_code],
      ['by phase', s.by_phase],
      ['by file type', s.by_file_type],
      ['by day', s.by_day],
    ]
    for (const [title, counts] of groups) {
      this.log(`\n${title}:`)
      for (const [key, n] of Object.entries(counts)) this.log(`  ${String(n).padStart(5)}  ${key}`)
    }
  }
}
