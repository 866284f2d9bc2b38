import type {Channel} from '../delivery/channel.js'
import type {DeliveryProducer, ProducedMessage} from '../daemon/delivery-producer.js'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import {LifecycleWebhookChannel} from './lifecycle-channel.js'
import {lifecycleBody, lifecycleEvent} from './lifecycle-events.js'
import {ProgressThrottle} from './progress-throttle.js'
import type {LifecycleHookSettings} from './webhook-settings.js'

/** Events after which a job sends nothing more (until a retry re-queues it). */
const JOB_ENDS = new Set(['job.completed', 'job.failed', 'job.dead', 'job.cancelled', 'job.skipped'])

/**
 * The lifecycle webhooks: every enabled `webhooks:` entry is a channel; each daemon event that is a
 * lifecycle event (lifecycle-events.ts) is queued for the hooks whose `events` take it. job.progress is
 * throttled per job and hook (`progress_interval`), and at most one per job and hook waits in the outbox:
 * a newer one takes its place.
 */
export class WebhookProducer implements DeliveryProducer {
  readonly name = 'webhook'
  readonly channels: readonly LifecycleWebhookChannel[]
  private readonly throttle = new ProgressThrottle()
  /** Hook id → its progress_interval (ms). */
  private readonly intervals: ReadonlyMap<string, number>

  constructor(
    hooks: readonly LifecycleHookSettings[],
    private readonly now: () => number = Date.now,
  ) {
    // A disabled hook is no channel: it gets nothing, and what was pending for it is dropped, logged.
    this.channels = hooks.filter((h) => h.enabled).map((h) => new LifecycleWebhookChannel(h))
    this.intervals = new Map(this.channels.map((c) => [c.id, c.settings.progressIntervalMs]))
  }

  messagesFor(event: DaemonEvent): ProducedMessage[] {
    const wire = lifecycleEvent(event)
    if (!wire) return []
    if (wire.event === 'job.progress' && 'job' in event) {
      const job = event.job.id
      const at = this.now()
      const only = (channel: Channel) => this.throttle.allow(channel.id, job, this.intervals.get(channel.id) ?? 0, at)
      return [{coalesce: `progress:${job}`, event: wire.event, only, payload: lifecycleBody(wire)}]
    }
    if (JOB_ENDS.has(wire.event) && 'job' in event) this.throttle.forget(event.job.id)
    return [{event: wire.event, payload: lifecycleBody(wire)}]
  }
}
