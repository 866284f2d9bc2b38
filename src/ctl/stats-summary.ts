import {escapeControl} from '../render/escape-control.js'

/** Emoji only for a person at a terminal: NO_COLOR or a pipe gets plain ASCII labels (the same words, greppable). */
export function wantsEmoji(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb'
}

const STATE_ICON: Record<string, string> = {DRAINING: '🚰', PAUSED: '⏸️', RUNNING: '▶️', STOPPED: '⏹️', STOPPING: '⏹️'}

/** The seed's first line of `ctl status`: `Status: ▶️ RUNNING` (`Status: RUNNING` without emoji). */
export function statusLine(state: string, emoji: boolean): string {
  const safe = escapeControl(state)
  return `Status: ${emoji && STATE_ICON[safe] ? `${STATE_ICON[safe]} ` : ''}${safe}`
}

const num = (value: unknown, unit = ''): string => (typeof value === 'number' && Number.isFinite(value) ? `${value}${unit}` : 'n/a')
const fixed = (value: unknown, places: number, unit = ''): string => (typeof value === 'number' && Number.isFinite(value) ? `${value.toFixed(places)}${unit}` : 'n/a')
const text = (value: unknown): string => escapeControl(typeof value === 'string' ? value : value === null || value === undefined ? '-' : JSON.stringify(value))

/**
 * `ctl stats` for a person: the seed's summary (📊 Daemon Statistics, Uptime, Processed, Failed, Success
 * Rate, Avg Processing Time, Queue Depth, Currently Processing) with one line per current job. Every value
 * that comes from a dropped file (its name, its error) has its control characters escaped.
 */
export function statsSummary(stats: Record<string, unknown>, emoji: boolean): string[] {
  const jobs = stats.current_jobs !== null && typeof stats.current_jobs === 'object' ? Object.values(stats.current_jobs as Record<string, Record<string, unknown>>) : []
  const processing = jobs.filter((j) => j.status === 'processing')
  const retrying = jobs.filter((j) => j.status === 'retrying')
  const lines = [
    `${emoji ? '📊 ' : ''}Daemon Statistics:`,
    `  State: ${text(stats.state)}`,
    `  Uptime: ${fixed(stats.uptime_hours, 1)} hours`,
    `  Processed: ${num(stats.total_processed)}`,
    `  Failed: ${num(stats.total_failed)}`,
    `  Retried: ${num(stats.total_retried)}`,
    `  Success Rate: ${stats.success_rate === null ? 'n/a (nothing finished yet)' : fixed(stats.success_rate, 1, '%')}`,
    `  Avg Processing Time: ${fixed(stats.average_processing_time_seconds, 1, 's')}`,
    `  Queue Depth: ${num(stats.current_queue_depth)}`,
    `  Pending Files: ${num(stats.pending_files)}`,
    `  Currently Processing: ${processing.length}`,
  ]
  for (const j of processing) lines.push(`    ${text(j.filename)}  job=${text(j.job_id)}  phase=${text(j.phase)}  ${fixed(j.file_size_mb, 1, ' MB')}  since ${text(j.start_time)}${Number(j.retry_count) > 0 ? `  retry ${num(j.retry_count)}` : ''}`)
  lines.push(`  Waiting for Retry: ${retrying.length}`)
  for (const j of retrying) lines.push(`    ${text(j.filename)}  job=${text(j.job_id)}  retry ${num(j.retry_count)}  next ${text(j.next_retry)}  error: ${text(j.error)}`)
  const types = stats.by_file_type !== null && typeof stats.by_file_type === 'object' ? Object.entries(stats.by_file_type as Record<string, Record<string, unknown>>) : []
  if (types.length > 0) {
    lines.push('  By File Type:')
    for (const [type, t] of types) lines.push(`    ${text(type)}: processed ${num(t.processed)}, failed ${num(t.failed)}, success ${fixed(t.success_rate, 1, '%')}, avg ${fixed(t.avg_time, 1, 's')}`)
  }
  return lines
}
