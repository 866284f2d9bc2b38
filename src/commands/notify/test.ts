import {randomUUID} from 'node:crypto'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {loadDaemonConfig} from '../../daemon/config.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {channelsOf} from '../../notify/channels.js'
import {testNotice} from '../../notify/notice.js'
import {escapeControl} from '../../render/escape-control.js'
import {redactSecrets} from '../../secrets/resolve-secret.js'
import {lifecycleTestMessages} from '../../webhooks/lifecycle-test-messages.js'

interface ChannelResult {
  channel: string
  ok: boolean
  detail: string
}

export default class NotifyTest extends BaseCommand<typeof NotifyTest> {
  static override description = `Reads the daemon configuration's notifications: section and sends one test message (event "test") to every configured webhook and to the email recipients, and a signed "test" event to every enabled lifecycle webhook (webhooks:), directly (not through the daemon's outbox, no retries). Prints ok or the reason per channel, never a secret; exits non-zero when any channel failed.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', description: 'Check webhooks and SMTP before starting the daemon'},
    {command: '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json', description: 'As JSON: {channels: [{channel, ok, detail}]}'},
  ]

  static override flags = {
    timeout: Flags.integer({default: 15, description: 'Seconds to wait for each channel.', min: 1}),
  }

  static override summary = 'Send a test notification through every configured channel and lifecycle webhook.'

  public async run(): Promise<{ok: boolean; channels: ChannelResult[]}> {
    const config = await loadDaemonConfig({config: this.flags.config})
    const settings = config.notifications
    for (const warning of settings.warnings) process.stderr.write(`warning: ${warning}\n`)
    const notice = testNotice()
    const notifications = channelsOf(settings).map((channel) => ({channel, message: {attempt: 1, createdAt: new Date(), event: 'test', id: randomUUID(), payload: notice}}))
    const sends = [...notifications, ...lifecycleTestMessages(config.webhooks, randomUUID)]
    if (sends.length === 0) {
      throw new H2KError('H2K_USAGE', `No notification channel or lifecycle webhook is configured${config.configFile ? ` in ${config.configFile}` : ''}.`, {
        suggestions: ['Set notifications.webhook_url (or notifications.webhooks, or email_enabled with smtp_server, email_from, email_to), or a webhooks: entry.'],
      })
    }
    if (notifications.length > 0 && !settings.enabled && !this.jsonEnabled()) this.log('note: notifications.enabled is false: the daemon sends nothing until it is true')
    const results = await Promise.all(
      sends.map(async ({channel, message}): Promise<ChannelResult> => {
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.flags.timeout * 1000)])
        const outcome = await channel.send(message, signal)
        return {channel: channel.label, detail: redactSecrets(outcome.ok ? (outcome.detail ?? 'delivered') : outcome.reason), ok: outcome.ok}
      }),
    )
    if (!this.jsonEnabled()) {
      // A server's answer is its text: escaped, so it cannot drive the terminal (escape sequences) or forge lines.
      for (const r of results) this.log(`${r.ok ? 'ok    ' : 'FAILED'}  ${escapeControl(r.channel)}  ${escapeControl(r.detail)}`)
    }
    const ok = results.every((r) => r.ok)
    if (!ok) process.exitCode = 1
    return {channels: results, ok}
  }
}
