import type {Channel, ChannelLimits, DeliveryMessage, DeliveryOutcome} from '../delivery/channel.js'
import {signedPost} from '../delivery/signed-post.js'
import type {LifecycleHookSettings} from './webhook-settings.js'

/**
 * One `webhooks:` entry as a delivery channel: the lifecycle event's JSON with `delivery_id` (the same on
 * every retry), its custom headers, signed (X-Hyper2kvm-Signature) when it has a secret. One attempt in
 * flight at a time, so a receiver that accepts them gets a job's events in the order they happened.
 */
export class LifecycleWebhookChannel implements Channel {
  readonly id: string
  readonly label: string
  readonly limits: ChannelLimits

  constructor(readonly settings: LifecycleHookSettings) {
    this.id = settings.id
    this.label = `lifecycle webhook ${new URL(settings.url).host}`
    this.limits = {concurrency: 1, maxAttempts: settings.maxAttempts, timeoutMs: settings.timeoutMs}
  }

  accepts(event: string): boolean {
    return !this.settings.events || (this.settings.events as string[]).includes(event)
  }

  send(message: DeliveryMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    return signedPost(this.settings, JSON.stringify({...(message.payload as Record<string, unknown>), delivery_id: message.id}), message, signal)
  }
}
