import {escapeControl} from '../render/escape-control.js'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

/**
 * One daemon log line: `<time> <LEVEL> <event> key=value … message`. Values with spaces, quotes or control
 * characters are JSON-quoted; the message's line breaks fold to ` | ` and every other control character is
 * escaped, so a file name with a newline or an escape sequence cannot forge or split a line.
 */
export function logLine(level: LogLevel, event: string, fields: Record<string, unknown>, message: string, at = new Date()): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"\p{Cc}\u2028\u2029]/u.test(v) && v !== '' ? v : escapeControl(JSON.stringify(v) ?? 'null')}`)
  const text = escapeControl(message.replace(/\s*\n\s*/g, ' | '))
  return `${at.toISOString()} ${level.toUpperCase()} ${event}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}${text ? ` ${text}` : ''}\n`
}
