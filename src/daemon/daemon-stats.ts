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

  stats(): Record<string, unknown> {
    const {failed, processed, retried, totalMs} = this.counters
    const finished = processed + failed
    const snapshot = this.source.snapshot()
    return {
      start_time: snapshot.startedAt.toISOString(),
      uptime_seconds: Math.round((Date.now() - snapshot.startedAt.getTime()) / 1000),
      state: snapshot.state,
      processed,
      failed,
      retried,
      success_rate: finished === 0 ? null : round((processed / finished) * 100, 1),
      average_processing_time_seconds: finished === 0 ? null : round(totalMs / finished / 1000, 3),
      queue_depth: snapshot.queued,
      pending_files: snapshot.pendingFiles,
      by_file_type: Object.fromEntries(
        [...this.byType].map(([type, t]) => [
          type,
          {failed: t.failed, processed: t.processed, success_rate: round((t.processed / (t.processed + t.failed)) * 100, 1), average_time_seconds: round(t.totalMs / (t.processed + t.failed) / 1000, 3)},
        ]),
      ),
      current_jobs: this.source
        .currentJobs()
        .filter((j) => j.status === 'processing')
        .map((j) => ({
          file: j.filename,
          job_id: j.jobId,
          phase: j.phase,
          retry_count: j.retryCount,
          size_mb: round(j.sizeBytes / 1024 / 1024, 2),
          start_time: j.startTime,
          status: 'running',
        })),
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
