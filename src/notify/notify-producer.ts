import type {DeliveryProducer, ProducedMessage} from '../daemon/delivery-producer.js'
import type {Channel} from '../delivery/channel.js'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import {channelsOf} from './channels.js'
import {noticeFor} from './notice.js'
import type {NotificationSettings} from './settings.js'

/**
 * The notifications: daemon events become notices (notify_on_* decide which) for the configured webhooks
 * and email, delivered by the daemon's one delivery engine (delivery-piece.ts).
 */
export class NotifyProducer implements DeliveryProducer {
  readonly name = 'notify'
  readonly channels: readonly Channel[]

  constructor(private readonly settings: NotificationSettings) {
    this.channels = channelsOf(settings)
  }

  messagesFor(event: DaemonEvent): ProducedMessage[] {
    const notice = noticeFor(event, this.settings)
    return notice ? [{event: notice.event, payload: notice}] : []
  }
}
