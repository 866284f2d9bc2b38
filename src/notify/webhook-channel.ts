import type {Channel, DeliveryMessage, DeliveryOutcome} from '../delivery/channel.js'
import {signedPost} from '../delivery/signed-post.js'
import type {Notice} from './notice.js'
import type {WebhookSettings} from './settings.js'
import {webhookPayload} from './webhook-payloads.js'

/** A Slack, Discord or generic webhook; signed (X-Hyper2kvm-Signature) when it has a secret. */
export class WebhookChannel implements Channel {
  readonly id: string
  readonly label: string

  constructor(private readonly settings: WebhookSettings) {
    this.id = settings.id
    this.label = `${settings.type} webhook ${new URL(settings.url).host}`
  }

  accepts(event: string): boolean {
    return event === 'test' || !this.settings.events || (this.settings.events as string[]).includes(event)
  }

  send(message: DeliveryMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    return signedPost(this.settings, JSON.stringify(webhookPayload(this.settings.type, message.payload as Notice)), message, signal)
  }
}
