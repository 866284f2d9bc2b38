import type {Channel, ChannelLimits, DeliveryMessage, DeliveryOutcome} from '../delivery/channel.js'
import {postJson} from '../delivery/http-post.js'
import {signatureHeaders} from '../delivery/sign-webhook.js'
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
    const body = JSON.stringify({...(message.payload as Record<string, unknown>), delivery_id: message.id})
    const headers: Record<string, string> = {
      ...this.settings.headers,
      'X-Hyper2kvm-Delivery': message.id,
      'X-Hyper2kvm-Event': message.event,
      ...(this.settings.secret ? signatureHeaders(this.settings.secret, body) : {}),
    }
    return postJson(this.settings.url, body, headers, signal)
  }
}
