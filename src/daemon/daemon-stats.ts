import {writeFileAtomic} from '../output/commit-outputs.js'
import type {DaemonEvent, DaemonListener, DaemonSnapshot} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'

/** A job of `current_jobs`: running, or waiting for its next attempt. */
export interface CurrentJob {
  filename: string
  jobId: string
  status: 'processing' | 'retrying'
  phase: string | null
  retryCount: number
  sizeBytes: number
  startTime: string | null
  nextRetryAt: string | null
  error: string | null
}

/** What the stats read from the daemon when asked. */
export interface StatsSource {
  snapshot(): DaemonSnapshot
  currentJobs(): CurrentJob[]
}

interface TypeCounts {
  processed: number
  failed: number
  totalMs: number
}

const round = (value: number, places: number): number => Math.round(value * 10 ** places) / 10 ** places

/**
 * `current_jobs`: a map keyed by the dropped file's name, as the seed's. Several jobs of one file (the jobs of
 * a `jobs:` batch file) would share that key: each of them is keyed `<file name>#<job id>` instead, so no
 * job hides another; every entry carries its `filename` and `job_id` (`.current_jobs[] | select(.filename == …)`).
 */
export function currentJobsMap(jobs: readonly CurrentJob[]): Record<string, Record<string, unknown>> {
  const count = new Map<string, number>()
  for (const j of jobs) count.set(j.filename, (count.get(j.filename) ?? 0) + 1)
  const map: Record<string, Record<string, unknown>> = {}
  for (const j of jobs) {
    map[count.get(j.filename)! > 1 ? `${j.filename}#${j.jobId}` : j.filename] = {
      filename: j.filename,
      status: j.status,
      start_time: j.startTime,
      file_size_mb: round(j.sizeBytes / 1024 / 1024, 2),
      retry_count: j.retryCount,
      next_retry: j.nextRetryAt,
      error: j.error,
      job_id: j.jobId,
      phase: j.phase,
    }
  }
  return map
}

/**
 * The daemon's statistics (`stats.json`, `ctl stats`): counted from the daemon's events since start,
 * with the queue read at the moment.
 */
export class DaemonStats implements DaemonListener {
  private readonly counters = {failed: 0, processed: 0, retried: 0, totalMs: 0}
  private readonly byType = new Map<string, TypeCounts>()
  private writing: Promise<void> = Promise.resolve()

  constructor(
    private readonly source: StatsSource,
    private readonly log: DaemonLogFn,
  ) {}

  get processed(): number {
    return this.counters.processed
  }

  get failed(): number {
    return this.counters.failed
  }

  onDaemonEvent(event: DaemonEvent): void {
    if (event.type === 'job:succeeded') this.count(event.job.fileType, 'processed', event.durationMs)
    else if (event.type === 'job:failed') this.count(event.job.fileType, 'failed', event.durationMs)
    else if (event.type === 'job:retry') this.counters.retried++
  }

  private count(type: string, kind: 'processed' | 'failed', ms: number): void {
    this.counters[kind]++
    this.counters.totalMs += ms
    const t = this.byType.get(type) ?? {failed: 0, processed: 0, totalMs: 0}
    t[kind]++
    t.totalMs += ms
    this.byType.set(type, t)
  }

  /**
   * The seed's stats.json keys and shapes (`total_processed`, `current_queue_depth`, `by_file_type.<type>.avg_time`,
   * `current_jobs` keyed by file name …), with ours beside them where they say more (state, pending_files,
   * uptime_seconds, job ids and phases, updated_at). Rates and averages are null until a job has finished
   * (`jq '.success_rate // 100'` reads that as healthy).
   */
  stats(): Record<string, unknown> {
    const {failed, processed, retried, totalMs} = this.counters
    const finished = processed + failed
    const snapshot = this.source.snapshot()
    const uptimeMs = Date.now() - snapshot.startedAt.getTime()
    return {
      daemon_start_time: snapshot.startedAt.toISOString(),
      uptime_hours: round(uptimeMs / 3_600_000, 2),
      uptime_seconds: Math.round(uptimeMs / 1000),
      state: snapshot.state,
      total_processed: processed,
      total_failed: failed,
      total_retried: retried,
      success_rate: finished === 0 ? null : round((processed / finished) * 100, 1),
      average_processing_time_seconds: finished === 0 ? null : round(totalMs / finished / 1000, 3),
      current_queue_depth: snapshot.queued,
      retry_waiting: snapshot.retryWaiting,
      running_jobs: snapshot.running,
      pending_files: snapshot.pendingFiles,
      max_concurrent_jobs: snapshot.maxConcurrentJobs,
      by_file_type: Object.fromEntries(
        [...this.byType].map(([type, t]) => [
          type,
          {processed: t.processed, failed: t.failed, avg_time: round(t.totalMs / (t.processed + t.failed) / 1000, 3), success_rate: round((t.processed / (t.processed + t.failed)) * 100, 1)},
        ]),
      ),
      current_jobs: currentJobsMap(this.source.currentJobs()),
      updated_at: new Date().toISOString(),
    }
  }

  /** Write stats.json atomically; serialized, since two writers of the same temporary file would race. */
  write(path: string): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        await writeFileAtomic(path, `${JSON.stringify(this.stats(), null, 2)}\n`)
      } catch (error) {
        this.log('warn', 'stats:write-failed', {}, (error as Error).message)
      }
    })
    return this.writing
  }
}
