import type {DaemonEvent} from '../daemon/daemon-events.js'
import type {HttpStreamReply, StreamSink} from '../http/routes.js'
import {type LifecycleEvent, lifecycleEvent} from '../webhooks/lifecycle-events.js'
import {ProgressThrottle} from '../webhooks/progress-throttle.js'

/** Seconds between two `: heartbeat` comments (proxies and clients see a live stream; a dead client is noticed). */
export const HEARTBEAT_MS = 15_000
/** Events kept for a client that reconnects with Last-Event-ID. */
const REPLAY = 256
/** At most one job.progress per job per this many ms on the stream. */
const PROGRESS_MS = 1000
/** The stream is one receiver of the throttle (webhooks are one each). */
const STREAM = 'sse'
/** Events after which a job sends nothing more (until a retry re-queues it): its throttle state goes. */
const JOB_ENDS = new Set(['job.completed', 'job.failed', 'job.dead', 'job.cancelled', 'job.skipped'])

interface Subscriber {
  sink: StreamSink
  job?: string
  events?: Set<string>
}

interface Sequenced extends LifecycleEvent {
  id: number
}

/** What a client asks of GET /api/v1/events: one job's events, some event names, a replay point. */
export interface StreamFilter {
  job?: string
  events?: string[]
  lastEventId?: number
}

/**
 * The server-sent event stream of GET /api/v1/events: lifecycle events (lifecycle-events.ts) numbered in
 * order (`id:`), job.progress throttled to one per job per second, a heartbeat comment every 15 s, a
 * replay of the last events for a client that reconnects with Last-Event-ID, at most `maxStreams` clients.
 */
export class EventStream {
  private seq = 0
  private readonly recent: Sequenced[] = []
  private readonly subscribers = new Set<Subscriber>()
  private readonly throttle = new ProgressThrottle()
  private readonly heartbeat: NodeJS.Timeout

  constructor(private readonly maxStreams: number) {
    this.heartbeat = setInterval(() => {
      for (const s of this.subscribers) s.sink.write(': heartbeat\n\n')
    }, HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  get size(): number {
    return this.subscribers.size
  }

  get full(): boolean {
    return this.subscribers.size >= this.maxStreams
  }

  onDaemonEvent(event: DaemonEvent): void {
    const mapped = lifecycleEvent(event)
    if (!mapped) return
    const job = typeof mapped.data.job_id === 'string' ? mapped.data.job_id : undefined
    if (mapped.event === 'job.progress' && job !== undefined) {
      if (!this.throttle.allow(STREAM, job, PROGRESS_MS, event.at.getTime())) return
    } else if (job !== undefined && JOB_ENDS.has(mapped.event)) this.throttle.forget(job)
    const sequenced: Sequenced = {...mapped, id: ++this.seq}
    this.recent.push(sequenced)
    if (this.recent.length > REPLAY) this.recent.shift()
    for (const s of this.subscribers) this.send(s, sequenced)
  }

  /** The reply that opens one stream (the caller checked `full`). */
  reply(filter: StreamFilter): HttpStreamReply {
    return {
      contentType: 'text/event-stream; charset=utf-8',
      open: (sink) => {
        const subscriber: Subscriber = {sink, ...(filter.job ? {job: filter.job} : {}), ...(filter.events ? {events: new Set(filter.events)} : {})}
        this.subscribers.add(subscriber)
        sink.onClose(() => this.subscribers.delete(subscriber))
        // The client's reconnect delay, then what it missed (when we still have it).
        sink.write(`retry: 3000\n: hyper2kvm events (seq ${this.seq})\n\n`)
        if (filter.lastEventId !== undefined) for (const e of this.recent) if (e.id > filter.lastEventId) this.send(subscriber, e)
      },
      status: 200,
    }
  }

  close(): void {
    clearInterval(this.heartbeat)
    for (const s of [...this.subscribers]) s.sink.end()
  }

  private send(s: Subscriber, e: Sequenced): void {
    if (s.job !== undefined && e.data.job_id !== s.job) return
    if (s.events && !s.events.has(e.event)) return
    // `data` with the event's time beside the seed's fields (a webhook body carries it at the top level).
    s.sink.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify({...e.data, timestamp: e.timestamp})}\n\n`)
  }
}
