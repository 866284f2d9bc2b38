/**
 * The daemon's Prometheus metrics: counters and histograms fed by DaemonEvents, gauges read from the
 * daemon's snapshot at scrape time, process metrics from prom-client. Everything lives in this object's
 * own Registry (never prom-client's global one), so two daemons in one process, or a test, never mix.
 * Names carry the `hyper2kvm_` prefix and follow the seeds where they fit (HyperSDK's jobs_total,
 * job_duration_seconds, active_jobs, queued_jobs, errors_total, retry_attempts_total; the stats exporter's
 * processed_total, failed_total, success_rate, queue_depth, avg_processing_time_seconds).
 */
import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from 'prom-client'

import type {DaemonEvent, DaemonListener, DaemonSnapshot, DaemonState} from '../daemon/daemon-events.js'
import {StageLabels, errorCodeLabel, phaseLabel} from './label-values.js'

export const METRIC_PREFIX = 'hyper2kvm_'

const STATES: readonly DaemonState[] = ['RUNNING', 'PAUSED', 'DRAINING', 'STOPPING']
/** Conversions take seconds (a small disk) to hours (a large VM with guest repair and a boot check). */
const JOB_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800]
/** Stages take milliseconds (describe) to an hour (a large convert). */
const STAGE_BUCKETS = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600]
const HTTP_STATUSES = ['200', '400', '401', '404', '405', '413', '500', '503']

export class DaemonMetrics implements DaemonListener {
  readonly registry = new Registry()
  private readonly stages = new StageLabels()
  private processed = 0
  private failed = 0
  private totalMs = 0

  private readonly jobs: Counter<'status'>
  private readonly jobDuration: Histogram<'status'>
  private readonly stageDuration: Histogram<'phase' | 'stage' | 'status'>
  private readonly bytesConverted: Counter
  private readonly outputBytes: Counter
  private readonly errors: Counter<'code'>
  private readonly retries: Counter
  private readonly duplicates: Counter
  private readonly processedTotal: Counter
  private readonly failedTotal: Counter
  private readonly httpRequests: Counter<'route' | 'status'>

  constructor(snapshot: () => DaemonSnapshot, version: string) {
    const registry = this.registry
    const registers = [registry]
    collectDefaultMetrics({prefix: METRIC_PREFIX, register: registry})
    // prom-client names three gauges `*_total`, which promtool's lint (rightly) reserves for counters;
    // the per-type gauges beside them (nodejs_active_handles{type} …) carry the same information.
    for (const total of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(`${METRIC_PREFIX}${total}`)
    const name = (n: string) => `${METRIC_PREFIX}${n}`

    this.jobs = new Counter({help: 'Jobs finished, by outcome (succeeded, failed (dead ones too), duplicate, cancelled, skipped).', labelNames: ['status'], name: name('jobs_total'), registers})
    for (const status of ['succeeded', 'failed', 'duplicate']) this.jobs.inc({status}, 0)
    this.jobDuration = new Histogram({buckets: JOB_BUCKETS, help: 'Duration of a finished job attempt in seconds (the last attempt), by outcome.', labelNames: ['status'], name: name('job_duration_seconds'), registers})
    for (const status of ['succeeded', 'failed']) this.jobDuration.zero({status})
    this.stageDuration = new Histogram({buckets: STAGE_BUCKETS, help: 'Duration of a pipeline stage in seconds, by stage id, phase and status (ok, skipped, failed).', labelNames: ['stage', 'phase', 'status'], name: name('stage_duration_seconds'), registers})
    this.bytesConverted = new Counter({help: 'Bytes of dropped inputs converted successfully.', name: name('bytes_converted_total'), registers})
    this.outputBytes = new Counter({help: 'Bytes of outputs written by successful conversions.', name: name('output_bytes_total'), registers})
    this.errors = new Counter({help: 'Failed job attempts (retried or final), by H2K error code.', labelNames: ['code'], name: name('errors_total'), registers})
    this.retries = new Counter({help: 'Job attempts that failed and were scheduled for a retry.', name: name('retry_attempts_total'), registers})
    this.duplicates = new Counter({help: 'Dropped files recognised as converted before (deduplication).', name: name('duplicates_total'), registers})
    this.processedTotal = new Counter({help: 'Conversions that succeeded since the daemon started (stats.json total_processed).', name: name('processed_total'), registers})
    this.failedTotal = new Counter({help: 'Conversions that failed for good since the daemon started (stats.json total_failed).', name: name('failed_total'), registers})
    this.httpRequests = new Counter({help: 'HTTP requests answered, by route and status code.', labelNames: ['route', 'status'], name: name('http_requests_total'), registers})

    const gauge = (n: string, help: string, read: (s: DaemonSnapshot) => number) => {
      const g: Gauge = new Gauge({collect: () => g.set(read(snapshot())), help, name: name(n), registers})
    }
    gauge('active_jobs', 'Jobs running now.', (s) => s.running)
    gauge('queued_jobs', 'Jobs waiting to run (including those waiting for a retry).', (s) => s.queued)
    gauge('queue_depth', 'Jobs waiting to run (stats.json current_queue_depth; the same as queued_jobs).', (s) => s.queued)
    gauge('retry_waiting_jobs', 'Jobs waiting for their next retry.', (s) => s.retryWaiting)
    gauge('pending_files', 'Files seen in the inbox, not claimed yet (waiting to be stable or complete).', (s) => s.pendingFiles)
    gauge('max_concurrent_jobs', 'Conversions the daemon runs at once (max_concurrent_jobs).', (s) => s.maxConcurrentJobs)
    gauge('daemon_start_time_seconds', 'When the daemon started, seconds since the epoch.', (s) => s.startedAt.getTime() / 1000)
    gauge('success_rate', 'Percentage of finished conversions that succeeded since the daemon started (stats.json success_rate; 100 before any finished).', () => {
      const finished = this.processed + this.failed
      return finished === 0 ? 100 : (this.processed / finished) * 100
    })
    gauge('avg_processing_time_seconds', 'Average duration of a finished conversion since the daemon started (stats.json average_processing_time_seconds; 0 before any finished).', () => {
      const finished = this.processed + this.failed
      return finished === 0 ? 0 : this.totalMs / finished / 1000
    })
    const state: Gauge<'state'> = new Gauge({
      collect: () => {
        const now = snapshot().state
        for (const s of STATES) state.set({state: s}, s === now ? 1 : 0)
      },
      help: 'The daemon state: 1 for the current one (RUNNING, PAUSED, DRAINING, STOPPING), 0 for the others.',
      labelNames: ['state'],
      name: name('daemon_state'),
      registers,
    })
    new Gauge({help: 'Always 1; the version label says which hyper2kvm runs.', labelNames: ['version'], name: name('build_info'), registers}).set({version}, 1)
  }

  onDaemonEvent(event: DaemonEvent): void {
    switch (event.type) {
      case 'job:succeeded': {
        this.processed++
        this.totalMs += event.durationMs
        this.processedTotal.inc()
        this.jobs.inc({status: 'succeeded'})
        this.jobDuration.observe({status: 'succeeded'}, event.durationMs / 1000)
        this.bytesConverted.inc(event.job.sizeBytes)
        this.outputBytes.inc(event.outputBytes)
        break
      }
      case 'job:failed': {
        this.failed++
        this.totalMs += event.durationMs
        this.failedTotal.inc()
        this.jobs.inc({status: 'failed'})
        this.jobDuration.observe({status: 'failed'}, event.durationMs / 1000)
        this.errors.inc({code: errorCodeLabel(event.error.code)})
        break
      }
      case 'job:retry': {
        this.retries.inc()
        this.errors.inc({code: errorCodeLabel(event.error.code)})
        break
      }
      // A dead job was counted as failed by its job:failed; cancelled and skipped jobs end without one.
      case 'job:cancelled':
      case 'job:skipped': {
        this.jobs.inc({status: event.type === 'job:cancelled' ? 'cancelled' : 'skipped'})
        break
      }
      case 'job:duplicate': {
        this.duplicates.inc()
        this.jobs.inc({status: 'duplicate'})
        break
      }
      case 'job:stage': {
        this.stageDuration.observe({phase: phaseLabel(event.kind), stage: this.stages.label(event.stage), status: event.status}, event.durationMs / 1000)
        break
      }
      default:
        break
    }
  }

  /** One HTTP request answered (route names come from the route table, never from the request path). */
  countRequest(route: string, status: number): void {
    const code = String(status)
    this.httpRequests.inc({route, status: HTTP_STATUSES.includes(code) ? code : 'other'})
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{body: string; contentType: string}> {
    return {body: await this.registry.metrics(), contentType: this.registry.contentType}
  }
}
