/**
 * A Notice as each webhook flavour wants it: Slack attachments and Discord embeds (the seed's layout), and
 * the seed's generic JSON (`event`, `timestamp`, `details`) with our fields beside them.
 */
import type {Notice, NoticeLevel} from './notice.js'
import type {WebhookType} from './settings.js'

const SLACK_COLOR: Record<NoticeLevel, string> = {error: 'danger', info: '#439FE0', success: 'good', warning: 'warning'}
const DISCORD_COLOR: Record<NoticeLevel, number> = {error: 0xe74c3c, info: 0x3498db, success: 0x2ecc71, warning: 0xf1c40f}
export const FOOTER = 'Hyper2KVM Daemon'

/** Slack treats <, > and & as markup (links, mentions): names from droppers must not become links. */
const slackText = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function slackPayload(notice: Notice): Record<string, unknown> {
  return {
    attachments: [
      {
        color: SLACK_COLOR[notice.level],
        fallback: slackText(`${notice.title}: ${notice.text}`),
        fields: notice.lines.map((l) => ({short: l.short, title: l.label, value: slackText(l.value)})),
        footer: FOOTER,
        text: slackText(notice.text),
        title: notice.title,
        ts: Math.floor(Date.parse(notice.timestamp) / 1000),
      },
    ],
  }
}

/** Discord markdown would render names; mentions are switched off so a file name cannot ping @everyone. */
const discordText = (text: string, max: number): string => {
  const escaped = text.replace(/([\\*_~`|>[\]()])/g, '\\$1')
  return escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped
}

export function discordPayload(notice: Notice): Record<string, unknown> {
  return {
    allowed_mentions: {parse: []},
    embeds: [
      {
        color: DISCORD_COLOR[notice.level],
        description: discordText(notice.text, 4000),
        fields: notice.lines.map((l) => ({inline: l.short, name: l.label, value: discordText(l.value, 1000)})),
        footer: {text: FOOTER},
        timestamp: notice.timestamp,
        title: notice.title,
      },
    ],
  }
}

export function genericPayload(notice: Notice): Record<string, unknown> {
  return {details: notice.details, event: notice.event, level: notice.level, text: notice.text, timestamp: notice.timestamp, title: notice.title}
}

export function webhookPayload(type: WebhookType, notice: Notice): Record<string, unknown> {
  return type === 'slack' ? slackPayload(notice) : type === 'discord' ? discordPayload(notice) : genericPayload(notice)
}
