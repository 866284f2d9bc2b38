import type {Channel, DeliveryMessage, DeliveryOutcome} from '../delivery/channel.js'
import {postJson} from '../delivery/http-post.js'
import {signatureHeaders} from '../delivery/sign-webhook.js'
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
    const body = JSON.stringify(webhookPayload(this.settings.type, message.payload as Notice))
    const headers: Record<string, string> = {
      ...this.settings.headers,
      'X-Hyper2kvm-Delivery': message.id,
      'X-Hyper2kvm-Event': message.event,
      ...(this.settings.secret ? signatureHeaders(this.settings.secret, body) : {}),
    }
    return postJson(this.settings.url, body, headers, signal)
  }
}
