import {DeliveryEngine, type DeliveryOptions} from '../delivery/delivery-engine.js'
import {Outbox} from '../delivery/outbox.js'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import type {DaemonLogFn, DaemonPiece} from '../daemon/daemon-pieces.js'
import {redactSecrets} from '../secrets/resolve-secret.js'
import {channelsOf} from './channels.js'
import {noticeFor} from './notice.js'
import type {NotificationSettings} from './settings.js'

/**
 * The notifications piece: turns daemon events into notices (notify_on_* decide which) and hands them to
 * the delivery engine, which writes them to the outbox (output_dir/.daemon/jobs.db) and delivers them in the
 * background. Listening costs one SQLite insert per channel; a conversion never waits for a webhook.
 */
export class NotifyPiece implements DaemonPiece {
  readonly name = 'notifications'

  private constructor(
    private readonly settings: NotificationSettings,
    private readonly outbox: Outbox,
    private readonly engine: DeliveryEngine,
    private readonly log: DaemonLogFn,
  ) {}

  /** undefined when notifications are off or no channel is configured. */
  static start(settings: NotificationSettings, storePath: string, log: DaemonLogFn, options: Partial<DeliveryOptions> = {}): NotifyPiece | undefined {
    for (const warning of settings.warnings) log('warn', 'notify:config', {}, warning)
    if (!settings.enabled) return undefined
    const channels = channelsOf(settings)
    if (channels.length === 0) {
      log('warn', 'notify:no-channel', {}, 'notifications.enabled is true but neither webhook_url, webhooks nor email_enabled is set')
      return undefined
    }
    const outbox = Outbox.open(storePath)
    // Delivery logs go through the redaction of registered secrets, whatever a server answered.
    const engine = new DeliveryEngine(outbox, channels, (level, event, fields, message) => log(level, event, fields, redactSecrets(message ?? '')), options)
    const pending = outbox.counts().pending
    log('info', 'notify:start', {channels: channels.map((c) => c.label).join(', '), pending})
    engine.start()
    return new NotifyPiece(settings, outbox, engine, log)
  }

  onDaemonEvent(event: DaemonEvent): void {
    const notice = noticeFor(event, this.settings)
    if (!notice) return
    const ids = this.engine.enqueue(notice.event, notice)
    this.log('debug', 'notify:queued', {deliveries: ids.length, event: notice.event, ...('job' in event ? {job: event.job.id} : {})})
  }

  async close(): Promise<void> {
    await this.engine.close()
    this.outbox.close()
  }
}
