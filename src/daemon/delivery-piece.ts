import type {Channel} from '../delivery/channel.js'
import {DeliveryEngine, type DeliveryOptions} from '../delivery/delivery-engine.js'
import {Outbox} from '../delivery/outbox.js'
import {redactSecrets} from '../secrets/resolve-secret.js'
import type {SqlDb} from '../store/sql-db.js'
import type {DaemonEvent} from './daemon-events.js'
import type {DaemonLogFn, DaemonPiece} from './daemon-pieces.js'
import type {DeliveryProducer} from './delivery-producer.js'

/**
 * The daemon's one delivery engine and outbox (table notification_outbox in the job store, this node's
 * rows) for everything it sends out — notifications and lifecycle webhooks alike: each producer turns daemon
 * events into messages for its own channels; the engine persists them, then delivers in the background
 * with retries. Listening costs one store insert per channel; a conversion never waits for a receiver.
 */
export class DeliveryPiece implements DaemonPiece {
  readonly name = 'delivery'

  private constructor(
    private readonly producers: ReadonlyArray<{producer: DeliveryProducer; owns: ReadonlySet<Channel>}>,
    private readonly outbox: Outbox,
    private readonly engine: DeliveryEngine,
    private readonly log: DaemonLogFn,
  ) {}

  /** undefined when no producer has a channel. */
  static start(producers: readonly DeliveryProducer[], store: {sql: SqlDb; nodeId: string}, log: DaemonLogFn, options: Partial<DeliveryOptions> = {}): DeliveryPiece | undefined {
    const channels = producers.flatMap((p) => p.channels)
    if (channels.length === 0) return undefined
    const outbox = Outbox.on(store.sql, store.nodeId)
    // Delivery logs go through the redaction of registered secrets, whatever a server answered.
    const engine = new DeliveryEngine(outbox, channels, (level, event, fields, message) => log(level, event, fields, redactSecrets(message ?? '')), options)
    log('info', 'notify:start', {channels: channels.map((c) => c.label).join(', '), pending: outbox.counts().pending})
    engine.start()
    return new DeliveryPiece(
      producers.filter((p) => p.channels.length > 0).map((producer) => ({owns: new Set(producer.channels), producer})),
      outbox,
      engine,
      log,
    )
  }

  onDaemonEvent(event: DaemonEvent): void {
    for (const {producer, owns} of this.producers) {
      for (const message of producer.messagesFor(event)) {
        // A producer's messages go to its own channels only (a notification webhook never gets job.started).
        const only = (channel: Channel) => owns.has(channel) && (message.only?.(channel) ?? true)
        const ids = this.engine.enqueue(message.event, message.payload, {only, ...(message.coalesce === undefined ? {} : {coalesce: message.coalesce})})
        this.log('debug', `${producer.name}:queued`, {deliveries: ids.length, event: message.event, ...('job' in event ? {job: event.job.id} : {})})
      }
    }
  }

  async close(): Promise<void> {
    await this.engine.close()
    this.outbox.close()
  }
}
