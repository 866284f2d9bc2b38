import type {Channel} from '../delivery/channel.js'
import type {EnqueueOptions} from '../delivery/delivery-engine.js'
import type {DaemonEvent} from './daemon-events.js'

/** One message a producer wants delivered, to those of its own channels that accept it. */
export interface ProducedMessage extends EnqueueOptions {
  event: string
  payload: unknown
}

/**
 * Something that turns daemon events into messages for its own channels (notifications, lifecycle
 * webhooks). The delivery piece gives every producer's channels to one engine and one outbox, and sends a
 * producer's messages only to that producer's channels.
 */
export interface DeliveryProducer {
  /** For logs: `notify` or `webhook` (`<name>:queued`). */
  readonly name: string
  readonly channels: readonly Channel[]
  messagesFor(event: DaemonEvent): ProducedMessage[]
}
