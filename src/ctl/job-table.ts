import type {JobRow} from '../daemon/store.js'
import {escapeControl} from '../render/escape-control.js'

/** The error code of a stored error ('-' when none). */
export function errorCodeOf(row: Pick<JobRow, 'error'>): string {
  if (!row.error) return '-'
  try {
    return String((JSON.parse(row.error) as {code?: string}).code ?? '?')
  } catch {
    return '?'
  }
}

/** Why a queued job waits, in a few words ('-' when it does not). */
export function waitOf(row: Pick<JobRow, 'wait_reason' | 'not_before'>): string {
  if (!row.wait_reason && row.not_before === null) return '-'
  const until = row.not_before === null || row.not_before === undefined ? '' : ` until ${new Date(row.not_before).toISOString()}`
  return `${row.wait_reason ?? 'waiting'}${until}`
}

/** Lines of an aligned table (every cell escaped: names come from dropped files); the last column is not padded. */
export function tableLines(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows].map((row) => row.map((cell) => escapeControl(cell)))
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)))
  return all.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '))
}
