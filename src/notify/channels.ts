import type {Channel} from '../delivery/channel.js'
import {EmailChannel} from './email-channel.js'
import type {NotificationSettings} from './settings.js'
import {WebhookChannel} from './webhook-channel.js'

/** Every configured channel: the webhooks in order, then email. */
export function channelsOf(settings: NotificationSettings): Channel[] {
  return [...settings.webhooks.map((w) => new WebhookChannel(w)), ...(settings.email ? [new EmailChannel(settings.email)] : [])]
}
