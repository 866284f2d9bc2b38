import type {Notice} from './notice.js'

/** The subject: `<email_subject_prefix> Conversion Failed: vm-123.vmdk` (the title without its emoji). */
export function emailSubject(prefix: string, notice: Notice): string {
  // Titles are our fixed English strings: everything before the first letter is the emoji.
  const title = notice.title.replace(/^[^A-Za-z]+/, '')
  const file = notice.details.filename
  return `${prefix ? `${prefix} ` : ''}${title}${file ? `: ${file}` : ''}`
}

/** A plain-text body with the same facts as the chat messages, then every detail as `key: value`. */
export function emailBody(notice: Notice): string {
  const rule = '='.repeat(60)
  const lines = [notice.text, '', ...notice.lines.map((l) => `${l.label}: ${l.value}`), '', 'Details:', rule]
  for (const [key, value] of Object.entries(notice.details)) lines.push(`${key}: ${String(value)}`)
  lines.push(rule, `event: ${notice.event}`, `timestamp: ${notice.timestamp}`, '', '-- Hyper2KVM Daemon')
  return `${lines.join('\n')}\n`
}
